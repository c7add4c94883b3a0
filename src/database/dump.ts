/**
 * Step "dump": one database written by the server's own dump tool, streamed through gzip into
 * `<paths.backups>/letto-<revision>.<database>.sql.gz` (beside the WAR backup of the same revision),
 * with a sidecar `….sql.gz.json` holding its SHA-256, size, time and the schema fingerprint taken with
 * it. Both are mode 600 and owned by the user letto-update runs as (root): they hold pupils' personal
 * data. The dump is written under `….sql.gz.tmp` and renamed once complete and flushed, so a dump file
 * is always whole; the sidecar is written last, so a dump without one is not letto-update's (a run
 * killed in between leaves a dump the next run overwrites, and retention never removes it alone).
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Revision } from '../revision.js';
import { LettoError } from '../errors.js';
import { hashFile, syncDir, writeFileAtomically } from '../system/files.js';
import { currentAccount } from '../system/users.js';
import { explainFailure, startTool, type Connection } from './connection.js';

/** The sidecar of a dump (`<dump>.json`): what letto-update wrote, to check it and to know it is ours. */
export interface DumpRecord {
  database: string;
  /** The revision that ran against the database when it was dumped (null: unknown). */
  revision: Revision | null;
  /** Absolute path of the `.sql.gz`. */
  path: string;
  /** SHA-256 (hex) of the `.sql.gz` file's bytes. */
  sha256: string;
  bytes: number;
  /** ISO 8601 (UTC): when the dump was finished. */
  time: string;
  /** The schema fingerprint (src/database/fingerprint.ts) taken right before the dump. */
  fingerprint: string;
}

/** `letto-<rev>.<database>.sql.gz` (`letto-unknown.…` when the revision is unknown). */
export function dumpName(revision: Revision | null, database: string): string {
  return `letto-${revision ?? 'unknown'}.${database}.sql.gz`;
}

/** The temporary name a dump is written under (removed by recovery when a run was killed). */
export function dumpTempPath(path: string): string {
  return `${path}.tmp`;
}

/** Counts and hashes the bytes that pass. */
class Tap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.push(chunk);
    done();
  }
}

/**
 * Dumps `database` into `folder` (see the module comment) and writes its sidecar.
 * @param fingerprint the schema fingerprint taken before (stored in the sidecar).
 * @param timeoutSeconds the dump tool is killed after this long (`database.timeout`).
 * @returns the sidecar's content.
 * @throws LettoError when the dump tool fails (access denied, server down, …) or the disk is full;
 *   the partial file is removed, an older dump of the same name is left as it was.
 */
export async function dumpDatabase(connection: Connection, database: string, folder: string, revision: Revision | null, fingerprint: string, timeoutSeconds = 3600): Promise<DumpRecord> {
  const path = join(folder, dumpName(revision, database));
  const temp = dumpTempPath(path);
  await rm(temp, { force: true });
  const tool = startTool(connection.dump(database), ['ignore', 'pipe', 'pipe'], timeoutSeconds);
  const tap = new Tap();
  try {
    // O_EXCL: never written through a planted link; fsync'd before the rename
    await pipeline(tool.child.stdout!, createGzip({ level: 6 }), tap, createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
    const handle = await open(temp, 'r+');
    await handle.sync().finally(() => handle.close());
    const code = await tool.exited;
    if (tool.timedOut()) throw new LettoError(`Dumping database ${database} did not finish within ${timeoutSeconds} s (database.timeout).`, { hint: 'Raise database.timeout, or find out why the server is slow.' });
    if (code !== 0) throw explainFailure(`Dumping database ${database}`, connection, tool.stderr(), code);
    await rename(temp, path);
    await syncDir(folder);
  } catch (error) {
    tool.child.kill('SIGKILL');
    await rm(temp, { force: true });
    if ((error as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new LettoError(`The disk is full: the dump of database ${database} did not fit into ${folder}.`, { hint: `Free space in ${folder} (old dumps and WAR backups), then run again.`, cause: error });
    }
    throw error;
  }
  const record: DumpRecord = { database, revision, path, sha256: tap.hash.digest('hex'), bytes: tap.bytes, time: new Date().toISOString(), fingerprint };
  await writeFileAtomically(`${path}.json`, JSON.stringify(record, null, 2) + '\n', currentAccount(), 0o600);
  return record;
}

/** The sidecar of the dump at `path` (a `.sql.gz`), or null when there is none or it is not ours. */
export async function readDumpRecord(path: string): Promise<DumpRecord | null> {
  try {
    const record = JSON.parse(await readFile(`${path}.json`, 'utf8')) as DumpRecord;
    if (typeof record.sha256 !== 'string' || typeof record.fingerprint !== 'string' || basename(record.path) !== basename(path)) return null;
    return { ...record, path };
  } catch {
    return null;
  }
}

/**
 * Checks a dump against its sidecar before it is loaded.
 * @throws LettoError when the file is missing, has another size or another SHA-256.
 */
export async function verifyDump(record: DumpRecord): Promise<void> {
  const info = await stat(record.path).catch(() => null);
  if (!info?.isFile()) throw new LettoError(`The dump ${record.path} is missing.`, { hint: `Look into ${dirname(record.path)}.` });
  const sha256 = await hashFile(record.path);
  if (info.size !== record.bytes || sha256 !== record.sha256) {
    throw new LettoError(`The dump ${record.path} is damaged (SHA-256 ${sha256}, ${info.size} bytes; recorded ${record.sha256}, ${record.bytes} bytes).`, {
      hint: 'It cannot be loaded safely; restore the database from your own nightly backup.',
    });
  }
}
