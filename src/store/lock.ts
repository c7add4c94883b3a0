import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BusyError } from '../errors.js';
import { createExclusive } from '../system/files.js';
import { isSameProcessAlive, processIdentity } from '../system/proc.js';
import type { Account } from '../system/users.js';

/**
 * The run lock: a file `lock` in the state folder holding `{pid, command, started, process}` (JSON);
 * `process` is the holder's identity ({@link processIdentity}), so a PID reused after a reboot is not
 * mistaken for the holder.
 */
export interface RunLock {
  path: string;
  release(): Promise<void>;
}

/**
 * Takes the run lock so that two runs never overlap. A lock whose process is gone (killed run, or a
 * PID now used by another process) is taken over.
 * @throws BusyError (exit 75) when a live process holds it.
 */
export async function acquireRunLock(stateDir: string, command: string, owner: Account): Promise<RunLock> {
  const path = join(stateDir, 'lock');
  const body = JSON.stringify({ pid: process.pid, command, started: new Date().toISOString(), process: processIdentity(process.pid) }) + '\n';
  const guard = `${path}.takeover`;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await createExclusive(path, body, owner)) {
      if (!(await isTakerBusy(guard))) await rm(guard, { force: true }); // left by a run killed after its takeover
      return {
        path,
        async release() {
          if ((await readLockHolder(path))?.pid === process.pid) await rm(path, { force: true });
        },
      };
    }
    const text = await readFile(path, 'utf8').catch(() => null);
    if (text === null) continue; // released meanwhile: try again
    const holder = parseHolder(text);
    if (holder && isSameProcessAlive(holder.pid, holder.process)) {
      throw new BusyError(`Another letto-update run (process ${holder.pid}) is in progress.`, 'Wait until it has finished, then run again.');
    }
    // no readable holder: createExclusive never leaves one (the file appears with its content), but a
    // version before it could be between creating and writing the file; only an old one is stale
    if (!holder && (await isFresh(path))) {
      throw new BusyError(`Another letto-update run is taking the run lock ${path}.`, 'Wait a moment, then run again.');
    }
    // stale: its process is gone. Several runs may have found the same stale lock: only the one that
    // holds the takeover guard (an O_EXCL file) may remove it, and only if it is still the content read
    // above; a check-then-remove without the guard could remove the lock another run just took over.
    if (!(await createExclusive(guard, body, owner))) {
      if (await isTakerBusy(guard)) {
        throw new BusyError(`Another letto-update run is taking over the stale run lock ${path}.`, 'Wait a moment, then run again.');
      }
      await rm(guard, { force: true }); // left by a run killed while taking over
      continue;
    }
    try {
      if ((await readFile(path, 'utf8').catch(() => null)) === text) await rm(path, { force: true });
    } finally {
      await rm(guard, { force: true });
    }
  }
  throw new BusyError(`Could not take the run lock ${path}.`, 'Another run keeps taking it; wait and run again.');
}

/** Whether the takeover guard names a live process (or, unreadable, was written just now). */
async function isTakerBusy(guard: string): Promise<boolean> {
  const taker = await readLockHolder(guard);
  return taker ? isSameProcessAlive(taker.pid, taker.process) : await isFresh(guard);
}

/** Milliseconds within which a lock file without a readable holder is taken as being written right now. */
const FRESH_MS = 10_000;

/** Whether `path` exists and was modified within {@link FRESH_MS}. */
async function isFresh(path: string): Promise<boolean> {
  const info = await stat(path).catch(() => null);
  return info !== null && Date.now() - info.mtimeMs < FRESH_MS;
}

async function readLockHolder(path: string): Promise<LockHolder | null> {
  return parseHolder(await readFile(path, 'utf8').catch(() => ''));
}

/** Who holds the run lock: the lock file's JSON (`process` null when the holder did not record one). */
export interface LockHolder {
  pid: number;
  process: string | null;
  /** `update`, `rollback`, `download`, `recover` or `watchdog` (`update` when not recorded). */
  command: string;
  /** ISO 8601 time the lock was taken (`?` when not recorded). */
  started: string;
}

/**
 * The live process holding the run lock (`<stateDir>/lock`), or null when there is none or its holder
 * is gone (same test as {@link acquireRunLock}: PID and process identity). Changes nothing.
 */
export async function runLockHolder(stateDir: string): Promise<LockHolder | null> {
  const holder = await readLockHolder(join(stateDir, 'lock'));
  return holder && isSameProcessAlive(holder.pid, holder.process) ? holder : null;
}

function parseHolder(text: string): LockHolder | null {
  try {
    const parsed = JSON.parse(text) as { pid?: unknown; process?: unknown; command?: unknown; started?: unknown };
    if (typeof parsed.pid !== 'number') return null;
    return {
      pid: parsed.pid,
      process: typeof parsed.process === 'string' ? parsed.process : null,
      command: typeof parsed.command === 'string' ? parsed.command : 'update',
      started: typeof parsed.started === 'string' ? parsed.started : '?',
    };
  } catch {
    return null;
  }
}
