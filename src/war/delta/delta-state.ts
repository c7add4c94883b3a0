/**
 * What a delta download keeps in staging, so that a killed or failed run is continued by the next one
 * without fetching a byte twice:
 * - `letto-<rev>.war.delta`: the WAR being assembled, written at its final offsets (holes where nothing
 *   is yet). Its name does not end in `.war`: nothing takes it for a WAR; it is renamed only once verified.
 * - `letto-<rev>.war.delta.json`: the URL, revision and the server's validators of the file
 *   ({@link DeltaSidecar}), written before the first byte of data.
 * - `letto-<rev>.war.delta.log`: one line per piece that is on disk, appended after its bytes were
 *   written: `f <start> <end>` (bytes fetched from the server, end exclusive) or
 *   `c <entry> <dataStart>` (entry number `entry` copied from a local zip to `dataStart` and checked).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { open, readFile, rm, type FileHandle } from 'node:fs/promises';
import type { Revision } from '../../revision.js';
import { giveTo, writeFileAtomically } from '../../system/files.js';
import type { Validators } from '../../system/http.js';
import type { Account } from '../../system/users.js';
import type { Interval } from './intervals.js';

/** `letto-<rev>.war.delta.json`. Units: bytes. */
export interface DeltaSidecar {
  url: string;
  revision: Revision;
  validators: Validators;
  total: number;
  directoryOffset: number;
}

/** What the log says is on disk. */
export interface DeltaProgress {
  fetched: Interval[];
  /** Entry number → where its data was copied to. */
  copied: Map<number, number>;
}

/** The three file names of a delta download of `final` (`…/letto-<rev>.war`). */
export function deltaPaths(final: string): { data: string; sidecar: string; log: string } {
  return { data: `${final}.delta`, sidecar: `${final}.delta.json`, log: `${final}.delta.log` };
}

/** Removes a delta download's files (after it was used, or when it cannot be continued). */
export async function discardDelta(final: string): Promise<void> {
  const paths = deltaPaths(final);
  await Promise.all([rm(paths.data, { force: true }), rm(paths.sidecar, { force: true }), rm(paths.log, { force: true })]);
}

/** The sidecar and progress of an earlier delta download of `url`/`revision`, or null (then nothing of it is trusted). */
export async function readDelta(final: string, url: string, revision: Revision): Promise<{ sidecar: DeltaSidecar; progress: DeltaProgress } | null> {
  const paths = deltaPaths(final);
  try {
    const sidecar = JSON.parse(await readFile(paths.sidecar, 'utf8')) as DeltaSidecar;
    if (sidecar.url !== url || sidecar.revision !== revision || typeof sidecar.total !== 'number' || typeof sidecar.validators !== 'object') return null;
    const progress: DeltaProgress = { fetched: [], copied: new Map() };
    for (const line of (await readFile(paths.log, 'utf8')).split('\n')) {
      // a line cut off by a kill is not complete: its piece is done again
      const match = /^([fc]) (\d+) (\d+)$/.exec(line);
      if (match?.[1] === 'f') progress.fetched.push({ start: Number(match[2]), end: Number(match[3]) });
      else if (match?.[1] === 'c') progress.copied.set(Number(match[2]), Number(match[3]));
    }
    return { sidecar, progress };
  } catch {
    return null;
  }
}

/** An open delta download: the data file, and the log that records each piece once it is written. */
export class DeltaFiles {
  private constructor(
    readonly data: FileHandle,
    private readonly logFd: number,
  ) {}

  /**
   * Opens the files of `final`; `fresh` first removes any earlier ones and writes `sidecar`
   * (before any data, so that the data is never there without what it belongs to).
   */
  static async open(final: string, owner: Account, fresh: DeltaSidecar | null): Promise<DeltaFiles> {
    const paths = deltaPaths(final);
    if (fresh) {
      await discardDelta(final);
      await writeFileAtomically(paths.sidecar, `${JSON.stringify(fresh)}\n`, owner, 0o640);
    }
    const data = await open(paths.data, fresh ? 'w+' : 'r+', 0o640);
    const logFd = openSync(paths.log, 'a', 0o640);
    await Promise.all([giveTo(paths.data, owner), giveTo(paths.log, owner)]);
    return new DeltaFiles(data, logFd);
  }

  /** Records bytes `[start, end)` fetched and written. */
  fetched(start: number, end: number): void {
    writeSync(this.logFd, `f ${start} ${end}\n`);
  }

  /** Records entry number `entry` copied to `dataStart` and checked. */
  copied(entry: number, dataStart: number): void {
    writeSync(this.logFd, `c ${entry} ${dataStart}\n`);
  }

  async close(): Promise<void> {
    closeSync(this.logFd);
    await this.data.close();
  }
}
