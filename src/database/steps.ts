/**
 * The database's part of the runbook (docs/database.md), called by a kind's install and recovery:
 *
 * 1. {@link prepareDumps}, before LeTTo is stopped: the server answers, every database exists, the
 *    backups folder is writable and has room (from the databases' size). A failure refuses the update
 *    with nothing changed.
 * 2. {@link dumpAll}, with LeTTo stopped (journal step `dump`): fingerprint and dump each database.
 * 3. {@link restoreChanged}, on an automatic rollback or in recovery, before the previous revision
 *    starts: each database whose schema fingerprint differs from its dump's is restored (journal step
 *    `restore`); the others are left alone. What was done is said in one sentence.
 */
import { rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Context } from '../context.js';
import { LettoError } from '../errors.js';
import type { Revision } from '../revision.js';
import type { Journal } from '../store/journal.js';
import { ensureDir, refuseSymlink } from '../system/files.js';
import { localConnection, type Connection } from './connection.js';
import { dumpDatabase, dumpName, dumpTempPath, type DumpRecord } from './dump.js';
import { databaseBytes, databaseExists, expandDatabases, schemaFingerprint } from './fingerprint.js';
import { restoreDatabase } from './restore.js';

const MIB = 1024 * 1024;

/** The databases to dump and how to reach them, as {@link prepareDumps} found them. */
export interface PreparedDumps {
  connection: Connection;
  databases: string[];
  folder: string;
}

/** The connection `[database]` describes, or null without a `[database]` section. */
export function databaseConnection(ctx: Context): Connection | null {
  const config = ctx.config.database;
  return config ? localConnection(config) : null;
}

/**
 * Before LeTTo is stopped: asks the server for the databases and their size, and checks that the
 * backups folder takes the dumps (writable, no planted symlink, free space ≥ the databases' data and
 * index bytes + `paths.free_space_margin`: a gzip'd dump is smaller than that in practice).
 * @returns null without a `[database]` section.
 * @throws LettoError (exit 1, nothing changed) saying which check failed.
 */
export async function prepareDumps(ctx: Context, from: Revision | null): Promise<PreparedDumps | null> {
  const connection = databaseConnection(ctx);
  if (!connection || !ctx.config.database) return null;
  const folder = ctx.config.paths.backups;
  const databases = await expandDatabases(connection, ctx.config.database.databases);
  let bytes = 0;
  for (const database of databases) {
    if (!(await databaseExists(connection, database))) {
      throw new LettoError(`Database ${database} does not exist on ${connection.where}; nothing was changed.`, { hint: 'Check database.databases in the config.' });
    }
    bytes += await databaseBytes(connection, database);
  }
  await ensureDir(folder, ctx.serviceUser);
  for (const database of databases) {
    const path = join(folder, dumpName(from, database));
    for (const name of [path, dumpTempPath(path), `${path}.json`]) await refuseSymlink(name);
  }
  const probe = join(folder, `.letto-update-probe-${process.pid}`);
  try {
    await writeFile(probe, '', { mode: 0o600 });
  } catch (error) {
    throw new LettoError(`The dump folder ${folder} is not writable (${(error as Error).message}); nothing was changed.`, { hint: `Make ${folder} writable for root, then run again.`, cause: error });
  } finally {
    await rm(probe, { force: true });
  }
  const free = await statfs(folder);
  const freeBytes = free.bavail * free.bsize;
  const needed = bytes + ctx.config.paths.free_space_margin * MIB;
  if (freeBytes < needed) {
    throw new LettoError(
      `Not enough free space in ${folder} for the database dump: ${(freeBytes / MIB).toFixed(0)} MiB free, ${(needed / MIB).toFixed(0)} MiB needed (the databases' size ${(bytes / MIB).toFixed(0)} MiB + margin); nothing was changed.`,
      { hint: `Free space in ${folder} (old dumps and WAR backups), then run again.` },
    );
  }
  return { connection, databases, folder };
}

/**
 * With LeTTo stopped: records the journal step `dump` (with the temporary names), then fingerprints
 * and dumps each database. On failure the dumps this run made are removed again.
 * @returns one record per database, also stored in the journal (`dumps`).
 * @throws LettoError from the dump (the caller starts LeTTo again and reports exit 1).
 */
export async function dumpAll(ctx: Context, prepared: PreparedDumps, from: Revision | null, journal?: Journal): Promise<DumpRecord[]> {
  const paths = prepared.databases.map((db) => join(prepared.folder, dumpName(from, db)));
  await journal?.record('dump', { temps: paths.map(dumpTempPath) });
  const records: DumpRecord[] = [];
  try {
    for (const database of prepared.databases) {
      ctx.emit({ type: 'step', step: 'backup', message: `Dumping database ${database} into ${join(prepared.folder, dumpName(from, database))}` });
      const fingerprint = await schemaFingerprint(prepared.connection, database);
      records.push(await dumpDatabase(prepared.connection, database, prepared.folder, from, fingerprint));
    }
  } catch (error) {
    for (const record of records) await Promise.all([rm(record.path, { force: true }), rm(`${record.path}.json`, { force: true })]);
    throw error;
  }
  await journal?.record('dump', { dumps: records });
  return records;
}

/**
 * Before the previous revision starts again: restores every database whose schema differs from its
 * dump's fingerprint (journal step `restore`, recorded before the first restore), and leaves the others
 * alone. `force` names databases to restore whatever their fingerprint (a restore that was cut short).
 * @returns one sentence for the log, the notice, `history` and runs.jsonl.
 * @throws LettoError when a restore fails (the journal keeps `restore`: the next run restores again).
 */
export async function restoreChanged(ctx: Context, dumps: DumpRecord[], journal?: Journal, force: string[] = []): Promise<string> {
  const connection = databaseConnection(ctx);
  if (!connection || dumps.length === 0) return '';
  const changed: DumpRecord[] = [];
  for (const dump of dumps) {
    if (force.includes(dump.database) || (await schemaFingerprint(connection, dump.database)) !== dump.fingerprint) changed.push(dump);
  }
  const kept = dumps.filter((d) => !changed.includes(d)).map((d) => d.database);
  if (changed.length > 0) {
    await journal?.record('restore', { restoring: changed.map((d) => d.database) });
    for (const dump of changed) {
      ctx.emit({ type: 'step', step: 'rollback', message: `The schema of database ${dump.database} changed: restoring it from ${dump.path}` });
      await restoreDatabase(connection, dump);
    }
  }
  const parts: string[] = [];
  if (changed.length > 0) parts.push(`database ${changed.map((d) => d.database).join(', ')} restored from the dump taken before the update (its schema had changed)`);
  if (kept.length > 0) parts.push(`database ${kept.join(', ')} left as it is (its schema had not changed)`);
  const sentence = parts.join('; ');
  return sentence ? `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}.` : '';
}
