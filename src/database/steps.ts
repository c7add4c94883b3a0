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
import { rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writableFolder } from '../kinds/plan-checks.js';
import type { Context } from '../context.js';
import { LettoError } from '../errors.js';
import type { Revision } from '../revision.js';
import type { Journal } from '../store/journal.js';
import { ensureDir, refuseSymlink } from '../system/files.js';
import { containerConnection, localConnection, query, type Connection } from './connection.js';
import { dumpDatabase, dumpName, dumpTempPath, type DumpRecord } from './dump.js';
import { databaseBytes, databaseExists, expandDatabases, schemaFingerprint } from './fingerprint.js';
import { databaseNames } from './names.js';
import { restoreDatabase } from './restore.js';

const MIB = 1024 * 1024;

/** The databases to dump and how to reach them, as {@link prepareDumps} found them. */
export interface PreparedDumps {
  connection: Connection;
  databases: string[];
  folder: string;
  /** The databases' data and index bytes, and the free bytes where the dumps go. */
  bytes: number;
  freeBytes: number;
}

/** The connection `[database]` describes (Docker: inside `database.container`), or null without a `[database]` section. */
export function databaseConnection(ctx: Context): Connection | null {
  const config = ctx.config.database;
  if (!config) return null;
  return ctx.config.docker ? containerConnection(config, ctx.config.docker.command) : localConnection(config);
}

/**
 * The databases to dump: {@link databaseNames} with `letto_*` expanded; a name ending in `?` (a
 * default's optional database) only when it exists, any other must exist, and at least one must be found
 * (a user who may see none of them, or the wrong container, must not pass as "nothing to dump").
 * @throws LettoError (exit 1, nothing changed) naming a database that does not exist, or when none is found.
 */
async function existingDatabases(connection: Connection, names: string[]): Promise<string[]> {
  const optional = names.filter((n) => n.endsWith('?')).map((n) => n.slice(0, -1));
  const databases: string[] = [];
  for (const database of await expandDatabases(connection, names.filter((n) => !n.endsWith('?')))) {
    if (!(await databaseExists(connection, database))) {
      throw new LettoError(`Database ${database} is not found on ${connection.where} (it does not exist, or the user letto-update connects as may not see it); nothing was changed.`, {
        hint: 'Check database.databases in the config, and that database.user (or the option file\'s user) has the rights on it.',
      });
    }
    databases.push(database);
  }
  for (const database of optional) if (await databaseExists(connection, database)) databases.push(database);
  if (databases.length === 0) {
    throw new LettoError(`No LeTTo database (${names.map((n) => n.replace(/\?$/, '')).join(', ')}) is found on ${connection.where}; nothing was changed.`, {
      hint: 'Check database.container and database.user in the config (the user must be allowed to see LeTTo\'s databases), or name them in database.databases.',
    });
  }
  return databases.sort();
}

/**
 * Waits until the database server answers a query (a container that compose has just recreated starts
 * its server first), asking every second.
 * @param seconds how long at most.
 * @throws LettoError (from the last query) when it still does not answer.
 */
export async function waitDatabase(connection: Connection, seconds: number): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      await query(connection, 'SELECT 1;');
      return;
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/**
 * Before LeTTo is stopped: asks the server for the databases and their size, and checks that the
 * backups folder takes the dumps (writable, no planted symlink, free space ≥ the databases' data and
 * index bytes + `paths.free_space_margin`: a gzip'd dump is smaller than that in practice).
 * `dryRun` (`update --dry-run`) writes nothing: the folder is checked with access(2) instead of a probe file.
 * @returns null without a `[database]` section.
 * @throws LettoError (exit 1, nothing changed) saying which check failed.
 */
export async function prepareDumps(ctx: Context, from: Revision | null, dryRun = false): Promise<PreparedDumps | null> {
  const connection = databaseConnection(ctx);
  if (!connection || !ctx.config.database) return null;
  const folder = ctx.config.paths.backups;
  const databases = await existingDatabases(connection, databaseNames(ctx));
  let bytes = 0;
  for (const database of databases) bytes += await databaseBytes(connection, database);
  for (const database of databases) {
    const path = join(folder, dumpName(from, database));
    for (const name of [path, dumpTempPath(path), `${path}.json`]) await refuseSymlink(name);
  }
  if (dryRun) await writableFolder(folder, null);
  else await probeWritable(ctx, folder);
  const free = await statfs(await nearestFolder(folder));
  const freeBytes = free.bavail * free.bsize;
  const needed = bytes + ctx.config.paths.free_space_margin * MIB;
  if (freeBytes < needed) {
    throw new LettoError(
      `Not enough free space in ${folder} for the database dump: ${(freeBytes / MIB).toFixed(0)} MiB free, ${(needed / MIB).toFixed(0)} MiB needed (the databases' size ${(bytes / MIB).toFixed(0)} MiB + margin); nothing was changed.`,
      { hint: `Free space in ${folder} (old dumps and WAR backups), then run again.` },
    );
  }
  return { connection, databases, folder, bytes, freeBytes };
}

/** Creates `folder` if needed and writes and removes a probe file in it. @throws LettoError when it cannot. */
async function probeWritable(ctx: Context, folder: string): Promise<void> {
  const probe = join(folder, `.letto-update-probe-${process.pid}`);
  try {
    await ensureDir(folder, ctx.serviceUser);
    await writeFile(probe, '', { mode: 0o600 });
  } catch (error) {
    throw new LettoError(`The dump folder ${folder} is not writable (${(error as Error).message}); nothing was changed.`, { hint: `Make ${folder} writable for root, then run again.`, cause: error });
  } finally {
    // never in place of the error above (rm fails too when the folder could not be made)
    await rm(probe, { force: true }).catch(() => undefined);
  }
}

/** `folder`, or the nearest folder above it that exists. */
async function nearestFolder(folder: string): Promise<string> {
  let path = folder;
  while (!(await stat(path).then((i) => i.isDirectory(), () => false)) && dirname(path) !== path) path = dirname(path);
  return path;
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
      records.push(await dumpDatabase(prepared.connection, database, prepared.folder, from, fingerprint, ctx.config.database?.timeout));
    }
  } catch (error) {
    for (const record of records) await Promise.all([rm(record.path, { force: true }), rm(`${record.path}.json`, { force: true })]);
    throw error;
  }
  await journal?.record('dump', { dumps: records });
  return records;
}

/**
 * The dumps whose database's schema differs from the dump's fingerprint, plus those named in `force`
 * (a restore that was cut short: its schema may already look right while rows are missing).
 * @throws LettoError when the server cannot be asked.
 */
export async function changedDumps(ctx: Context, dumps: DumpRecord[], force: string[] = []): Promise<DumpRecord[]> {
  const connection = databaseConnection(ctx);
  if (!connection) return [];
  const changed: DumpRecord[] = [];
  for (const dump of dumps) {
    if (force.includes(dump.database) || (await schemaFingerprint(connection, dump.database)) !== dump.fingerprint) changed.push(dump);
  }
  return changed;
}

/**
 * What an automatic rollback or a recovery did with the databases: `sentence` for the log and the
 * notice; `summary` for `history` and runs.jsonl (`restored`: at least one database was restored).
 */
export interface DatabaseOutcome {
  sentence: string;
  summary: 'restored' | 'left alone';
}

/**
 * Before the previous revision starts again (LeTTo stopped): restores the `changed` dumps (journal step
 * `restore` recorded first, through `record`), and leaves the other databases of `dumps` alone.
 * @returns what was done (null without dumps).
 * @throws LettoError when a restore fails (the journal keeps `restore`: the next run restores again).
 */
export async function restoreDumps(ctx: Context, dumps: DumpRecord[], changed: DumpRecord[], record?: (restoring: string[]) => Promise<void>): Promise<DatabaseOutcome | null> {
  const connection = databaseConnection(ctx);
  if (!connection || dumps.length === 0) return null;
  if (changed.length > 0) {
    await record?.(changed.map((d) => d.database));
    for (const dump of changed) {
      ctx.emit({ type: 'step', step: 'rollback', message: `The schema of database ${dump.database} changed: restoring it from ${dump.path}` });
      await restoreDatabase(connection, dump, ctx.config.database?.timeout);
    }
  }
  const kept = dumps.filter((d) => !changed.some((c) => c.database === d.database)).map((d) => d.database);
  const parts: string[] = [];
  const names = (list: string[]) => `${list.length > 1 ? 'databases' : 'database'} ${list.join(', ')}`;
  const its = (list: unknown[]) => (list.length > 1 ? 'their schemas' : 'its schema');
  if (changed.length > 0) parts.push(`${names(changed.map((d) => d.database))} restored from the dump taken before the update (${its(changed)} had changed)`);
  if (kept.length > 0) parts.push(`${names(kept)} left as ${kept.length > 1 ? 'they are' : 'it is'} (${its(kept)} had not changed)`);
  const sentence = parts.join('; ');
  return { sentence: `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}.`, summary: changed.length > 0 ? 'restored' : 'left alone' };
}

/** {@link changedDumps} then {@link restoreDumps}, recording the journal step `restore` in `journal`. */
export async function restoreChanged(ctx: Context, dumps: DumpRecord[], journal?: Journal): Promise<DatabaseOutcome | null> {
  const changed = await changedDumps(ctx, dumps);
  return restoreDumps(ctx, dumps, changed, async (restoring) => journal?.record('restore', { restoring }));
}
