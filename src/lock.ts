import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BusyError } from './errors.js';
import { createExclusive } from './system/files.js';
import type { Account } from './system/users.js';

/** The run lock: a file `lock` in the state folder holding `{pid, command, started}` (JSON). */
export interface RunLock {
  path: string;
  release(): Promise<void>;
}

/**
 * Takes the run lock so that two runs never overlap. A lock whose process is gone (killed run) is
 * taken over.
 * @throws BusyError (exit 75) when a live process holds it.
 */
export async function acquireRunLock(stateDir: string, command: string, owner: Account): Promise<RunLock> {
  const path = join(stateDir, 'lock');
  const body = JSON.stringify({ pid: process.pid, command, started: new Date().toISOString() }) + '\n';
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await createExclusive(path, body, owner)) {
      return {
        path,
        async release() {
          if ((await readLockPid(path)) === process.pid) await rm(path, { force: true });
        },
      };
    }
    const pid = await readLockPid(path);
    if (pid !== null && isAlive(pid)) {
      throw new BusyError(`Another letto-update run (process ${pid}) is in progress.`, 'Wait until it has finished, then run again.');
    }
    await rm(path, { force: true }); // stale: its process is gone
  }
  throw new BusyError(`Could not take the run lock ${path}.`, 'Another run keeps taking it; wait and run again.');
}

async function readLockPid(path: string): Promise<number | null> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as { pid?: unknown };
    return typeof parsed.pid === 'number' ? parsed.pid : null;
  } catch {
    return null;
  }
}

/** True when a process with this PID exists (EPERM means it exists but belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
