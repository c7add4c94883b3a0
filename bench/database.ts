/**
 * `npm run bench -- --database`: letto-update's dump and restore of a LeTTo-like database (src/database/,
 * the code an update runs) side by side with the same done by hand in the same run, alternating:
 * `mariadb-dump … | gzip > file` against dumpDatabase (the dump tool's output through Node's zlib, the
 * SHA-256 on the way), and `zcat file | mariadb db` (after DROP + CREATE) against restoreDatabase
 * (SHA-256 check of the file, DROP + CREATE, the client fed through Node's gunzip). What the dump adds
 * to an update's downtime is what `dumpAll` (src/database/steps.ts) does with LeTTo stopped: the schema
 * fingerprint, then the dump; both are timed, and the sum is reported as the downtime added.
 *
 * A real MariaDB server is started for it (test/support/mariadb.ts, Debian's mariadb-server). Options:
 * `--db-mib 256` (size of the generated rows; about 70 % of it is data + indexes by information_schema,
 * so the 1 GiB database is `--db-mib 1470`), `--runs 3`. In odd runs letto-update's step goes
 * first, in even runs the hand-run one, so that an order effect (caches, InnoDB flushing the previous
 * load) does not favour one side. The load average is printed at the start and after each run (a
 * shared machine makes absolute times noisy).
 */
import { execa } from 'execa';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
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

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(`database bench: ${mib} MiB of rows, ${runs} runs each; CPU ${cpus()[0]?.model ?? '?'} × ${cpus().length}; load average ${load()}`);
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
  const times = { fingerprint: [] as number[], dump: [] as number[], dumpHand: [] as number[], restore: [] as number[], restoreHand: [] as number[] };
  let record: DumpRecord | null = null;
  /** Runs both steps of a pair, letto-update's first in odd runs and the hand-run one first in even runs (order effects cancel). */
  const pair = async (i: number, ours: () => Promise<number>, hand: () => Promise<number>): Promise<[number, number]> => {
    if (i % 2 === 0) return [await ours(), await hand()];
    const first = await hand();
    return [await ours(), first];
  };
  for (let i = 0; i < runs; i++) {
    let fingerprint = '';
    const [dump, dumpHand] = await pair(
      i,
      async () => {
        times.fingerprint.push(await seconds(async () => (fingerprint = await schemaFingerprint(connection, 'letto'))));
        return seconds(async () => (record = await dumpDatabase(connection, 'letto', folder, 6880, fingerprint)));
      },
      () => seconds(() => execa('sh', ['-c', `mariadb-dump ${client.join(' ')} --single-transaction --quick --routines --triggers --events --hex-blob letto | gzip > '${byHand}'`])),
    );
    const [restore, restoreHand] = await pair(
      i,
      () => seconds(() => restoreDatabase(connection, record!)),
      () =>
        seconds(async () => {
          await execa('mariadb', client, { input: 'DROP DATABASE letto; CREATE DATABASE letto CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;' });
          await execa('sh', ['-c', `zcat '${byHand}' | mariadb ${client.join(' ')} letto`]);
        }),
    );
    times.dump.push(dump);
    times.dumpHand.push(dumpHand);
    times.restore.push(restore);
    times.restoreHand.push(restoreHand);
    console.log(`run ${i + 1} (${i % 2 === 0 ? 'letto-update first' : 'by hand first'}): fingerprint ${times.fingerprint.at(-1)!.toFixed(2)} s, dump ${dump.toFixed(1)} s (by hand ${dumpHand.toFixed(1)} s), restore ${restore.toFixed(1)} s (by hand ${restoreHand.toFixed(1)} s); load average ${load()}`);
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
  const downtime = times.fingerprint.map((f, i) => f + times.dump[i]!);
  console.log(`\nThe dump adds ${median(downtime).toFixed(1)} s to an update's downtime (median of fingerprint + dump, LeTTo stopped: fingerprint ${median(times.fingerprint).toFixed(2)} s, dump ${median(times.dump).toFixed(1)} s).`);
  console.log(`load average at the end: ${load()}`);
} finally {
  await db.cleanup();
  await rm(folder, { recursive: true, force: true });
}
