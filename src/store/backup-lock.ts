import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BusyError, LettoError } from '../errors.js';
import { isSameProcessAlive, processIdentity } from '../system/proc.js';
import { createExclusive } from '../system/files.js';
import type { Context } from '../context.js';
import type { JournalEntry } from './journal.js';

/**
 * The backup lock ("sicherungslock", default `/sicherung/sqlsicherungaktiv`, see DOMAIN.md): while this
 * file exists the LeTTo watchdog never restarts TomEE. Backups create it; letto-update creates it too,
 * with its own marker in the content, so the watchdog leaves TomEE alone while it restarts it.
 */
export const MARKER_PREFIX = 'letto-update';

/** The state of the backup lock path. */
export type BackupLockState =
  | { kind: 'absent' }
  | { kind: 'backup' } // somebody else's file: a backup is running
  | { kind: 'ours-stale'; pid: number }; // our marker, left by a run that was killed

/** Reads what the backup lock path holds. */
export async function inspectBackupLock(path: string): Promise<BackupLockState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    return { kind: 'backup' };
  }
  const pid = parseMarker(text);
  const identity = /\bprocess=(\S+)/.exec(text)?.[1];
  if (pid !== null && pid !== process.pid && !isSameProcessAlive(pid, identity === 'unknown' ? null : identity)) return { kind: 'ours-stale', pid };
  return { kind: 'backup' };
}

/**
 * Creates the backup lock with our marker (`letto-update pid=N since=ISO process=BOOTID:START`).
 * @returns the marker text, or null when the file exists already (a backup started meanwhile).
 */
export async function createBackupLock(path: string): Promise<string | null> {
  const marker = `${MARKER_PREFIX} pid=${process.pid} since=${new Date().toISOString()} process=${processIdentity(process.pid) ?? 'unknown'}\n`;
  await mkdir(dirname(path), { recursive: true });
  return (await createExclusive(path, marker, null)) ? marker : null;
}

/** Removes the backup lock only if it still carries `marker` (a backup may have replaced it). */
export async function releaseBackupLock(path: string, marker: string): Promise<boolean> {
  try {
    if ((await readFile(path, 'utf8')) !== marker) return false;
  } catch {
    return false;
  }
  await rm(path, { force: true });
  return true;
}

function parseMarker(text: string): number | null {
  const match = new RegExp(`^${MARKER_PREFIX} pid=(\\d+)`).exec(text);
  return match ? Number(match[1]) : null;
}

/**
 * Takes the backup lock for an install (TomEE or Docker) before anything is stopped.
 *
 * @param lockPath `paths.backup_lock`
 * @param who the Linux user letto-update creates files as (named in the hint)
 * @param restarts what a watchdog would restart, for the hint (e.g. "TomEE", "LeTTo")
 * @returns `{ marker }` to release it later, or `{ error }`: a `LettoError` (exit 1) when the file cannot be
 *   created, a `BusyError` (exit 75) when a backup created it first. Nothing was changed in either case.
 */
export async function takeBackupLock(lockPath: string, who: string, restarts: string): Promise<{ marker: string } | { error: LettoError }> {
  let marker: string | null;
  try {
    marker = await createBackupLock(lockPath);
  } catch (error) {
    return {
      error: new LettoError(`Cannot create the backup lock ${lockPath} (${(error as Error).message}); nothing was changed.`, {
        hint: `Without it the watchdog could restart ${restarts} in the middle of the update. Let ${who} create files in ${dirname(lockPath)}, or run as root, or set paths.backup_lock.`,
        cause: error,
      }),
    };
  }
  if (marker === null) return { error: new BusyError(`A backup started (the backup lock ${lockPath} appeared); nothing was changed.`, 'Run again after the backup.') };
  return { marker };
}

/**
 * Fails with exit 75 when a backup is running (the backup lock exists and is not ours). A marker left
 * by a killed run of ours is removed.
 */
export async function assertNoBackupRunning(ctx: Context): Promise<void> {
  const path = ctx.config.paths.backup_lock;
  const lock = await inspectBackupLock(path);
  if (lock.kind === 'ours-stale') await rm(path, { force: true });
  if (lock.kind === 'backup') {
    throw new BusyError(`A backup is running (the backup lock ${path} exists); nothing was changed.`, 'Run again after the backup has finished (cron will retry next night).');
  }
}

/**
 * Removes a marker of ours left in the backup lock: the killed run's (by its PID, even if that PID is
 * alive again after a reboot), or any of ours whose process is gone (e.g. a recovery that was killed
 * too). A backup's own lock file is never touched.
 */
export async function releaseStaleMarker(ctx: Context, journal: JournalEntry): Promise<void> {
  const path = journal.backupLock ?? ctx.config.paths.backup_lock;
  const text = await readFile(path, 'utf8').catch(() => '');
  if (text.startsWith(`${MARKER_PREFIX} pid=${journal.pid} `) || (await inspectBackupLock(path)).kind === 'ours-stale') {
    await rm(path, { force: true });
  }
}
