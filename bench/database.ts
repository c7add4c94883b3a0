/**
 * `npm run bench -- --database`: letto-update's dump and restore of a LeTTo-like database (src/database/,
 * the code an update runs) side by side with the same done by hand in the same run, alternating:
 * `mariadb-dump … | gzip > file` against dumpDatabase (the dump tool's output through Node's zlib, the
 * SHA-256 on the way), and `zcat file | mariadb db` (after DROP + CREATE) against restoreDatabase
 * (SHA-256 check of the file, DROP + CREATE, the client fed through Node's gunzip). The dump's time is
 * what it adds to an update's downtime: LeTTo is stopped while it runs.
 *
 * A real MariaDB server is started for it (test/support/mariadb.ts, Debian's mariadb-server). Options:
 * `--db-mib 256` (size of the generated rows; the target is 1024), `--runs 3`.
 */
import { execa } from 'execa';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { localConnection, query } from '../src/database/connection.js';
import { dumpDatabase, type DumpRecord } from '../src/database/dump.js';
import { databaseBytes, schemaFingerprint } from '../src/database/fingerprint.js';
import { restoreDatabase } from '../src/database/restore.js';
import { createLettoDatabase, startMariaDb } from '../test/support/mariadb.js';
import { median } from './measure.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const mib = Number(arg('db-mib', '256'));
const runs = Number(arg('runs', '3'));
const MIB = 1024 * 1024;

console.log(`database bench: ${mib} MiB of rows, ${runs} runs each; CPU ${cpus()[0]?.model ?? '?'} × ${cpus().length}`);
const db = await startMariaDb();
const folder = await mkdtemp(join(tmpdir(), 'letto-dbbench-'));
try {
  const made = Date.now();
  await createLettoDatabase(db, 'letto', mib);
  const connection = localConnection({ databases: ['letto'], socket: db.socket, user: 'root', option_file: '', dump_command: '', client_command: '', container: '', password_variable: '', timeout: 3600 });
  console.log(`generated in ${((Date.now() - made) / 1000).toFixed(0)} s: ${(await databaseBytes(connection, 'letto') / MIB).toFixed(0)} MiB data + indexes (information_schema)`);
  const client = ['--no-defaults', `--socket=${db.socket}`, '--user=root'];
  const byHand = join(folder, 'by-hand.sql.gz');
  const seconds = async (step: () => Promise<unknown>): Promise<number> => {
    const start = process.hrtime.bigint();
    await step();
    return Number(process.hrtime.bigint() - start) / 1e9;
  };
  const times = { dump: [] as number[], dumpHand: [] as number[], restore: [] as number[], restoreHand: [] as number[] };
  let record: DumpRecord | null = null;
  for (let i = 0; i < runs; i++) {
    const fingerprint = await schemaFingerprint(connection, 'letto');
    times.dump.push(await seconds(async () => (record = await dumpDatabase(connection, 'letto', folder, 6880, fingerprint))));
    times.dumpHand.push(await seconds(() => execa('sh', ['-c', `mariadb-dump ${client.join(' ')} --single-transaction --quick --routines --triggers --events --hex-blob letto | gzip > '${byHand}'`])));
    times.restore.push(await seconds(() => restoreDatabase(connection, record!)));
    times.restoreHand.push(
      await seconds(async () => {
        await execa('mariadb', client, { input: 'DROP DATABASE letto; CREATE DATABASE letto CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;' });
        await execa('sh', ['-c', `zcat '${byHand}' | mariadb ${client.join(' ')} letto`]);
      }),
    );
    console.log(`run ${i + 1}: dump ${times.dump.at(-1)!.toFixed(1)} s (by hand ${times.dumpHand.at(-1)!.toFixed(1)} s), restore ${times.restore.at(-1)!.toFixed(1)} s (by hand ${times.restoreHand.at(-1)!.toFixed(1)} s)`);
  }
  const rows = (await query(connection, 'SELECT COUNT(*) FROM ergebnis;', 'letto'))[0]?.[0];
  const dumpBytes = (await stat(record!.path)).size;
  const handBytes = (await stat(byHand)).size;
  const line = (what: string, ours: number[], hand: number[]) =>
    `| ${what} | ${median(ours).toFixed(1)} s | ${median(hand).toFixed(1)} s | ${(median(ours) / median(hand)).toFixed(2)}× |`;
  console.log(`\n${rows} result rows; dump ${(dumpBytes / MIB).toFixed(1)} MiB (by hand ${(handBytes / MIB).toFixed(1)} MiB)\n`);
  console.log('| step (median) | letto-update | by hand | ratio |\n|---|---|---|---|');
  console.log(line('dump (`mariadb-dump | gzip`)', times.dump, times.dumpHand));
  console.log(line('restore (`zcat | mariadb`)', times.restore, times.restoreHand));
  console.log(`\nThe dump adds ${median(times.dump).toFixed(1)} s to an update's downtime (LeTTo is stopped while it runs).`);
} finally {
  await db.cleanup();
  await rm(folder, { recursive: true, force: true });
}
