/**
 * src/database/ against a real MariaDB server (Debian's mariadb-server, started by the test): dump,
 * schema fingerprint, restore (also with a leftover client of a killed run still on the database), and
 * the refusals (access denied, server down, folder not writable).
 */
import { execa } from 'execa';
import { mkdtemp, readFile, readdir, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { createReadStream } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localConnection, query } from '../../src/database/connection.js';
import { dumpDatabase, readDumpRecord, verifyDump } from '../../src/database/dump.js';
import { databaseBytes, expandDatabases, schemaFingerprint } from '../../src/database/fingerprint.js';
import { endConnections, restoreDatabase } from '../../src/database/restore.js';
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

  it('a leftover client of a killed run still on the database (blocked in a statement, the rest of a cut dump to run) is ended before the drop: the database equals the dump, the leftover is gone', async () => {
    const connection = localConnection(config());
    const record = await dumpDatabase(connection, 'letto', folder, 6882, await schemaFingerprint(connection, 'letto'));
    const before = await db.checksums('letto');
    // what a killed run's `mariadb letto` still has to run: the dump's header, a slow statement, then a table of the dump without its rows
    const create = (await db.sql('SHOW CREATE TABLE schule;', 'letto')).split('\t')[1]!.replace(/\\n/g, '\n');
    const leftover = execa('mariadb', ['--no-defaults', `--socket=${db.socket}`, '--user=root', '--batch', 'letto'], {
      input: `SET FOREIGN_KEY_CHECKS=0;\nSELECT SLEEP(15);\nDROP TABLE IF EXISTS schule;\n${create};\n`,
      reject: false,
    });
    try {
      await until(async () => (await leftovers()) === '1');
      await restoreDatabase(connection, record);
      const after = await leftovers();
      const ended = await leftover;
      // the leftover was ended, not left to finish: its `schule` without rows did not replace the restored one
      expect(await db.checksums('letto')).toBe(before);
      expect(after).toBe('0');
      expect(ended.exitCode).not.toBe(0);
      expect(ended.stderr).toMatch(/Lost connection|server has gone away|Connection was killed/i);
    } finally {
      leftover.kill('SIGKILL');
    }
  }, 60_000);

  it('a connection on the database that may not be ended: the restore is refused with a clear message, the database untouched', async () => {
    await db.sql("CREATE USER IF NOT EXISTS 'lettoproc'@'localhost' IDENTIFIED BY 'procpass'; GRANT PROCESS ON *.* TO 'lettoproc'@'localhost'; GRANT ALL PRIVILEGES ON `letto`.* TO 'lettoproc'@'localhost';");
    const connection = localConnection(config());
    const record = await dumpDatabase(connection, 'letto', folder, 6883, await schemaFingerprint(connection, 'letto'));
    await db.sql("INSERT INTO schule (name, kurz) VALUES ('after the dump', 'after');", 'letto');
    const before = await db.checksums('letto');
    // root's session (its statement over two lines): lettoproc sees it (PROCESS) but may not end it
    const other = execa('mariadb', ['--no-defaults', `--socket=${db.socket}`, '--user=root', '--batch', 'letto'], { input: 'SELECT\n  SLEEP(30);\n', reject: false });
    try {
      await until(async () => (await leftovers()) === '1');
      const asProc = localConnection({ ...config(), user: 'lettoproc', option_file: await optionFile('lettoproc', 'procpass') });
      await expect(restoreDatabase(asProc, record)).rejects.toThrow(/Database letto is used by connection \d+ \(root@localhost, Query: SELECT SLEEP\(30\)\) on .*, which letto-update could not end \(.*not owner of thread.*\); it was not restored\./);
      expect(await db.checksums('letto')).toBe(before);
    } finally {
      other.kill('SIGKILL');
      await other;
    }
    await restoreDatabase(connection, record); // as root, for the tests after this one: the row written after the dump goes
  }, 60_000);

  it('connections that do not go within the bound: a clear error naming them (only the first three words of its statement)', async () => {
    // a stand-in client that always lists one connection on the database (and two lines that are no row) and accepts every KILL
    const script = join(folder, 'stuck-client.sh');
    await writeFile(script, "#!/bin/sh\nif grep -q PROCESSLIST; then printf '7\\troot\\tlocalhost\\tKilled\\tALTER TABLE ergebnis ENGINE=InnoDB\\n%s\\n' 'is a value of the row'; printf 'NULL\\n'; fi\nexit 0\n", { mode: 0o755 });
    const stuck = localConnection({ ...config(), client_command: script });
    await expect(endConnections(stuck, 'letto', 0.3)).rejects.toThrow(/^Database letto is still used by connection 7 \(root@localhost, Killed: ALTER TABLE ergebnis\) on .*, 0\.3 s after letto-update ended it \(KILL CONNECTION\); it was not restored\.$/);
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

/** Connections other than the asking one whose default database is `letto`, as the server counts them. */
async function leftovers(): Promise<string> {
  return db.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = 'letto' AND ID <> CONNECTION_ID();");
}

/** Polls `condition` every 20 ms for up to 10 s. @throws when it never holds. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('condition not reached within 10 s');
}

/** A MySQL option file (mode 600) with user and password, as an admin would write one. */
async function optionFile(user: string, password: string): Promise<string> {
  const path = join(folder, `${user}-${password}.cnf`);
  await writeFile(path, `[client]\nuser=${user}\npassword=${password}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}
