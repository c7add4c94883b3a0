/**
 * src/database/ against a real MariaDB server (Debian's mariadb-server, started by the test): dump,
 * schema fingerprint, restore, and the refusals (access denied, server down, folder not writable).
 */
import { mkdtemp, readFile, readdir, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { createReadStream } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localConnection, query } from '../../src/database/connection.js';
import { dumpDatabase, readDumpRecord, verifyDump } from '../../src/database/dump.js';
import { databaseBytes, expandDatabases, schemaFingerprint } from '../../src/database/fingerprint.js';
import { restoreDatabase } from '../../src/database/restore.js';
import { listDumps, pruneDumps } from '../../src/database/retention.js';
import { createLettoDatabase, mariadbAvailable, MIGRATION_SQL, startMariaDb, type MariaDb } from '../support/mariadb.js';

const required = process.env.LETTO_E2E_REQUIRED === '1';
const available = mariadbAvailable();
if (required && !available) throw new Error('LETTO_E2E_REQUIRED=1 but mariadb-server is not installed (apt install mariadb-server)');

let db: MariaDb;
let folder: string;
const config = () => ({ databases: ['letto'], socket: db.socket, user: 'root', option_file: '', dump_command: '', client_command: '', container: '', password_variable: '', timeout: 600 });

describe.skipIf(!available)('database dump and restore (real MariaDB)', () => {
  beforeAll(async () => {
    db = await startMariaDb();
    await createLettoDatabase(db, 'letto', 3);
    folder = await mkdtemp(join(tmpdir(), 'letto-dumps-'));
  }, 120_000);
  afterAll(async () => {
    await db?.cleanup();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('dumps (mode 600, sidecar with SHA-256), a migration changes the fingerprint, the restore gives every table back', async () => {
    const connection = localConnection(config());
    expect(await databaseBytes(connection, 'letto')).toBeGreaterThan(1024 * 1024);
    const before = await db.checksums('letto');
    const fingerprint = await schemaFingerprint(connection, 'letto');
    const record = await dumpDatabase(connection, 'letto', folder, 6880, fingerprint);
    expect(record.path).toBe(join(folder, 'letto-6880.letto.sql.gz'));
    expect((await stat(record.path)).mode & 0o777).toBe(0o600);
    expect((await stat(`${record.path}.json`)).mode & 0o777).toBe(0o600);
    expect((await readdir(folder)).sort()).toEqual(['letto-6880.letto.sql.gz', 'letto-6880.letto.sql.gz.json']);
    expect(await readDumpRecord(record.path)).toEqual(record);
    await verifyDump(record);
    let text = '';
    for await (const chunk of createReadStream(record.path).pipe(createGunzip())) text += String(chunk);
    expect(text).toContain('CREATE TABLE `ergebnis`');

    // rows written without a schema change keep the fingerprint
    await db.sql("INSERT INTO health (revision) VALUES (6880);", 'letto');
    expect(await schemaFingerprint(connection, 'letto')).toBe(fingerprint);
    await db.sql(MIGRATION_SQL, 'letto');
    expect(await schemaFingerprint(connection, 'letto')).not.toBe(fingerprint);

    await restoreDatabase(connection, record);
    expect(await db.checksums('letto')).toBe(before);
    expect(await schemaFingerprint(connection, 'letto')).toBe(fingerprint);
    // the grant survives drop and create: LeTTo's own user still reads
    const asLetto = localConnection({ ...config(), user: 'letto', option_file: await optionFile('letto', 'lettopass') });
    expect((await query(asLetto, 'SELECT COUNT(*) FROM schule;', 'letto'))[0]).toEqual(['2']);
    // repeatable from the file
    await restoreDatabase(connection, record);
    expect(await db.checksums('letto')).toBe(before);
  }, 120_000);

  it('a damaged dump is not loaded', async () => {
    const connection = localConnection(config());
    const record = await dumpDatabase(connection, 'letto', folder, 6881, await schemaFingerprint(connection, 'letto'));
    // one byte flipped, same size: only the SHA-256 tells
    const bytes = await readFile(record.path);
    bytes[bytes.length >> 1]! ^= 0xff;
    await writeFile(record.path, bytes);
    const before = await db.checksums('letto');
    await expect(restoreDatabase(connection, record)).rejects.toThrow(/damaged \(SHA-256 [0-9a-f]{64}, \d+ bytes; recorded/);
    expect(await db.checksums('letto')).toBe(before);
    await writeFile(record.path, 'not a dump');
    await expect(restoreDatabase(connection, record)).rejects.toThrow(/damaged/);
  });

  it('retention removes only letto-update\'s dumps of the revisions whose WAR backup went', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'letto-dumps-'));
    const connection = localConnection(config());
    const fingerprint = await schemaFingerprint(connection, 'letto');
    await dumpDatabase(connection, 'letto', dir, 6870, fingerprint);
    await dumpDatabase(connection, 'letto', dir, 6880, fingerprint);
    await writeFile(join(dir, 'letto-6871.letto.sql.gz'), 'an admin\'s own dump, no sidecar');
    expect((await listDumps(dir)).map((d) => d.revision)).toEqual([6880, 6870]);
    expect(await pruneDumps(dir, [6870, 6871])).toEqual([join(dir, 'letto-6870.letto.sql.gz')]);
    expect((await readdir(dir)).sort()).toEqual(['letto-6871.letto.sql.gz', 'letto-6880.letto.sql.gz', 'letto-6880.letto.sql.gz.json']);
    await rm(dir, { recursive: true });
  });

  it('expands letto_* to every school database', async () => {
    await db.sql('CREATE DATABASE letto_htl; CREATE DATABASE letto_bg; CREATE DATABASE lettolti;');
    expect(await expandDatabases(localConnection(config()), ['letto_*', 'lettolti'])).toEqual(['letto_bg', 'letto_htl', 'lettolti']);
  });

  it('access denied: a clear message, no file left behind', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'letto-dumps-'));
    const connection = localConnection({ ...config(), option_file: await optionFile('letto', 'wrong') });
    await expect(dumpDatabase(connection, 'letto', empty, 6880, 'x')).rejects.toThrow(/access denied/);
    expect(await readdir(empty)).toEqual([]);
    await rm(empty, { recursive: true });
  });

  it('database.timeout: a dump or a restore that takes longer is given up, no file left behind', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'letto-dumps-'));
    const connection = localConnection(config());
    await expect(dumpDatabase(connection, 'letto', empty, 6890, 'x', 0.001)).rejects.toThrow(/did not finish within 0.001 s \(database.timeout\)/);
    expect(await readdir(empty)).toEqual([]);
    const record = await dumpDatabase(connection, 'letto', empty, 6890, await schemaFingerprint(connection, 'letto'));
    await expect(restoreDatabase(connection, record, 0.001)).rejects.toThrow(/did not finish within/);
    await restoreDatabase(connection, record); // and again from the file, whole
    expect((await query(connection, 'SELECT COUNT(*) FROM schule;', 'letto'))[0]).toEqual(['2']);
    await rm(empty, { recursive: true });
  });

  it('server down: says the server does not answer, no file left behind', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'letto-dumps-'));
    const connection = localConnection({ ...config(), socket: join(empty, 'no.sock') });
    await expect(dumpDatabase(connection, 'letto', empty, 6880, 'x')).rejects.toThrow(/does not answer/);
    await expect(schemaFingerprint(connection, 'letto')).rejects.toThrow(/does not answer/);
    expect(await readdir(empty)).toEqual([]);
    await rm(empty, { recursive: true });
  });
});

/** A MySQL option file (mode 600) with user and password, as an admin would write one. */
async function optionFile(user: string, password: string): Promise<string> {
  const path = join(folder, `${user}-${password}.cnf`);
  await writeFile(path, `[client]\nuser=${user}\npassword=${password}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}
