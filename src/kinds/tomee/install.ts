import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { inspectBackupLock, releaseBackupLock, takeBackupLock } from '../../store/backup-lock.js';
import { catalinaOut, warPath, type Context, type WarFile } from '../../context.js';
import { BusyError, LettoError, ScriptError, asLettoError } from '../../errors.js';
import { revisionWarName, type Revision } from '../../revision.js';
import { backupInstalled, backupPathFor, backupTempPath } from '../../war/backups.js';
import { waitHealthy } from './health.js';
import { explodedPath, swapTempPath, swapWar } from './swap.js';
import type { Journal } from '../../store/journal.js';
import type { LogTail } from '../../report/log-tail.js';
import { refuseSymlink } from '../../system/files.js';
import { checkFreeSpace } from './space.js';
import { startTomee, stopTomee, tomeeStatus } from './scripts.js';
import { UndoList } from '../../runbook/undo.js';
import { dumpAll, prepareDumps, restoreChanged, type DatabaseOutcome, type PreparedDumps } from '../../database/steps.js';

/**
 * How installing a WAR ended:
 * - `installed`: the new revision runs and answered its health check (or TomEE was stopped before and left so);
 * - `failed`: it failed before the running server was touched; nothing changed (exit 1);
 * - `rolled-back`: it failed after TomEE was stopped; the previous revision runs healthy again (exit 3);
 * - `rollback-failed`: putting the previous revision back failed too; the server needs a person (exit 4).
 *
 * `log`: the log lines of what failed its health check, read before the undo (a Docker install's
 * `docker logs`; TomEE's catalina.out tail is read when the notice is sent). `database`: what the
 * rollback did with LeTTo's databases (`[database]`, src/database/steps.ts).
 */
export type InstallOutcome =
  | { result: 'installed'; started: boolean; message: string }
  | { result: 'failed'; error: LettoError }
  | { result: 'rolled-back' | 'rollback-failed'; error: LettoError; message: string; log?: LogTail; database?: DatabaseOutcome['summary'] };

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
 * The runbook shared by update and rollback: keep the installed WAR as a backup, take the backup lock
 * so the watchdog leaves TomEE alone, stop TomEE, swap the WAR in, start TomEE, wait for the health
 * check. Each step that changes the machine registers its undo; on any failure after TomEE was stopped
 * the undo list puts the previous WAR back, starts TomEE and checks health again.
 *
 * @param from the installed revision (null: unknown); @param target a verified WAR.
 * @returns the outcome (never throws for expected failures).
 */
export async function installWar(ctx: Context, from: Revision | null, target: WarFile, journal?: Journal): Promise<InstallOutcome> {
  let backup: WarFile | null;
  let databases: PreparedDumps | null;
  const lockPath = ctx.config.paths.backup_lock;
  try {
    await refusePlantedSymlinks(ctx, from);
    databases = await prepareDumps(ctx, from);
    const backupPath = backupPathFor(ctx, from);
    await journal?.record('backup', { from, to: target.revision, target: target.path, temps: [backupTempPath(backupPath)] });
    backup = await backupInstalled(ctx, from);
    await journal?.record('backup-lock', { backup: backup?.path ?? null, backupLock: lockPath });
  } catch (error) {
    return { result: 'failed', error: asLettoError(error) };
  }
  const lock = await takeBackupLock(lockPath, ctx.serviceUser.name, 'TomEE');
  if ('error' in lock) return { result: 'failed', error: lock.error };
  const { marker } = lock;
  const undo = new UndoList();
  let touched = false;
  let swapped = false;
  let dumpFailed = false;
  let database: DatabaseOutcome | null = null;
  ctx.emit({ type: 'critical', active: true });
  const fromLabel = `revision ${backup?.revision ?? from ?? 'unknown'}`;
  const fromSentence = `R${fromLabel.slice(1)}`; // the same, starting a sentence
  try {
    const wasRunning = (await tomeeStatus(ctx)).running;
    await journal?.record('stop', { wasRunning });
    if (wasRunning) {
      undo.push(`start TomEE with ${fromLabel} and check its health`, async () => {
        if (!(await tomeeStatus(ctx)).running) {
          touched = true; // e.g. a stop script that failed or timed out had stopped TomEE all the same
          await startTomee(ctx);
        }
        const health = await waitHealthy(ctx);
        if (!health.healthy) throw new Error(`${fromLabel} did not answer its health check either (${health.last})`);
      });
      await stopTomee(ctx);
      touched = true;
    } else {
      await refuseIfAnswering(ctx);
      ctx.emit({ type: 'warn', message: 'TomEE was not running before the update; it is left stopped (start it with the start script).' });
    }
    if (backup) undo.push(`put ${fromLabel} back into webapps`, () => swapWar(ctx, backup));
    if (databases) {
      const dumps = await dumpAll(ctx, databases, from, journal).catch((error: unknown) => {
        dumpFailed = true;
        throw error;
      });
      undo.push('restore the databases whose schema changed', async () => {
        database = await restoreChanged(ctx, dumps, journal);
      });
    }
    await journal?.record('swap', { temps: [swapTempPath(ctx)] });
    swapped = true;
    await swapWar(ctx, target);
    if (!wasRunning) {
      await journal?.record('installed', { healthy: false });
      undo.clear();
      return { result: 'installed', started: false, message: `Revision ${target.revision} installed; TomEE was stopped before and is left stopped.` };
    }
    undo.push('stop TomEE', () => stopTomee(ctx));
    await journal?.record('start');
    await startTomee(ctx);
    await journal?.record('health');
    const health = await waitHealthy(ctx);
    if (!health.healthy) {
      throw new LettoError(
        `Revision ${target.revision ?? 'unknown'} did not answer ${ctx.config.tomee.health_url} with HTTP 200 within ${ctx.config.tomee.health_timeout} s (last: ${health.last}).`,
        { hint: `Look at ${catalinaOut(ctx.config)} (and the other logs in that folder) for why it did not start.` },
      );
    }
    await journal?.record('installed', { healthy: true });
    undo.clear();
    return { result: 'installed', started: true, message: `Revision ${target.revision} runs and answers its health check (after ${health.seconds} s).` };
  } catch (caught) {
    const error = asLettoError(caught);
    ctx.emit({ type: 'warn', message: error.message });
    if (touched) await journal?.record('undo').catch(() => undefined);
    const unwind = await undo.unwind(ctx.emit);
    if (dumpFailed && unwind.ok) return { result: 'failed', error: refusedByDump(error, touched ? `TomEE runs ${fromLabel} again` : 'TomEE was not running and is left stopped') };
    if (!touched && unwind.ok) return { result: 'failed', error };
    if (touched && unwind.ok) {
      return {
        result: 'rolled-back',
        error,
        message: (swapped ? `${fromSentence} was put back and answers its health check again.` : `The WAR in webapps was not changed; TomEE runs ${fromLabel} again and it answers its health check.`) + (database ? ` ${(database as DatabaseOutcome).sentence}` : ''),
        ...(database ? { database: (database as DatabaseOutcome).summary } : {}),
      };
    }
    journal?.abandon(); // kept on disk: the next run (or \`letto-update recover\`) tries again
    const failures = unwind.failures.map((f) => `${f.label}: ${f.error instanceof Error ? f.error.message : String(f.error)}`).join('; ');
    return {
      result: 'rollback-failed',
      error,
      message: `Putting ${fromLabel} back failed too (${failures}). LeTTo may be down: look at ${catalinaOut(ctx.config)}, and install a backup from ${ctx.config.paths.backups} by hand or with \`letto-update rollback --to N\`.`,
    };
  } finally {
    await releaseBackupLock(lockPath, marker).catch(() => undefined);
    ctx.emit({ type: 'critical', active: false });
  }
}

/** A dump that failed refuses the update: the dump's error, and that nothing was changed. */
function refusedByDump(error: LettoError, state: string): LettoError {
  return new LettoError(`${error.message} The update was refused before anything changed: no dump, no update; ${state}.`, { hint: error.hint, cause: error });
}

/**
 * The status script says TomEE is stopped: make sure LeTTo does not answer anyway (a status script
 * that looks at the wrong PID file must not lead to a WAR swapped under a running server).
 * @throws ScriptError when health_url answers HTTP 200.
 */
async function refuseIfAnswering(ctx: Context): Promise<void> {
  const probe = await ctx.services.http.probe(ctx.config.tomee.health_url, 5);
  if (probe.ok && probe.status === 200) {
    throw new ScriptError(`The status script says TomEE is stopped, but ${ctx.config.tomee.health_url} answers HTTP 200. Nothing was changed.`, {
      hint: `Check tomee.status (${ctx.config.tomee.status}): it must print the PID of the running TomEE.`,
    });
  }
}

/**
 * Before anything changes: refuses when a name this run will write to in webapps or backups (the WAR,
 * its temporary name, the exploded folder, the backup and its temporary name) is a symbolic link.
 * A planted link could make a root-run write land anywhere; refusing here, before TomEE is stopped,
 * leaves the server untouched.
 * @throws LettoError (exit 1) naming the link.
 */
async function refusePlantedSymlinks(ctx: Context, from: Revision | null): Promise<void> {
  const backup = backupPathFor(ctx, from);
  await assertNoSymlinks([warPath(ctx.config), swapTempPath(ctx), explodedPath(ctx), backup, backupTempPath(backup)]);
}

/**
 * Refuses when any of `paths` is a symbolic link (see {@link refusePlantedSymlinks}).
 * @throws an ESYMLINK error naming the link (exit 1 with a hint, see asLettoError); nothing was changed.
 */
export async function assertNoSymlinks(paths: string[]): Promise<void> {
  for (const path of paths) await refuseSymlink(path);
}

/**
 * The names a download of `revision` writes in staging: `letto-<rev>.war`, its `.part` and the `.part.json`
 * sidecar, and the delta download's `.delta`, `.delta.json` and `.delta.log` (src/war/delta/delta-state.ts).
 */
export function stagingNames(ctx: Context, revision: Revision): string[] {
  const final = join(ctx.config.paths.staging, revisionWarName(revision));
  return [final, `${final}.part`, `${final}.part.json`, `${final}.delta`, `${final}.delta.json`, `${final}.delta.log`];
}

/**
 * Before the download of `to`: room on disk ({@link checkFreeSpace}), no planted symlink among the
 * staging names, then the journal's first step (`update` and `rollback`; `download` keeps no journal).
 * @throws LettoError (exit 1) when space is short or a name is a link; nothing was changed.
 */
export async function beforeDownload(ctx: Context, from: Revision | null, to: Revision, journal?: Journal): Promise<void> {
  await checkFreeSpace(ctx, to);
  await assertNoSymlinks(stagingNames(ctx, to));
  await journal?.record('download', { from, to });
}
