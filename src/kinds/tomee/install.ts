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
import type { LogTail } from '../../system/log-tail.js';
import { refuseSymlink } from '../../system/files.js';
import { checkFreeSpace } from './space.js';
import { startTomee, stopTomee, tomeeStatus } from './scripts.js';
import { UndoList } from '../../runbook/undo.js';
import type { InstallOptions, InstallOutcome } from '../types.js';
import type { DumpRecord } from '../../database/dump.js';
import { dumpAll, prepareDumps, restoreChanged, restoreDumps, type DatabaseOutcome, type PreparedDumps } from '../../database/steps.js';

/**
 * What the runbook learnt that the unwinding needs: `touched` (TomEE was stopped, also found stopped
 * by the undo), `swapped` (the WAR was swapped), `dumpFailed` (the database dump failed: the update is
 * refused, exit 1), `database` (what the undo did with the databases).
 */
interface InstallState {
  touched: boolean;
  swapped: boolean;
  dumpFailed: boolean;
  database: DatabaseOutcome | null;
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
export async function installWar(ctx: Context, from: Revision | null, target: WarFile, journal?: Journal, options: InstallOptions = {}): Promise<InstallOutcome> {
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
  const state: InstallState = { touched: false, swapped: false, dumpFailed: false, database: null };
  ctx.emit({ type: 'critical', active: true });
  const fromLabel = `revision ${backup?.revision ?? from ?? 'unknown'}`;
  try {
    const wasRunning = (await tomeeStatus(ctx)).running;
    await journal?.record('stop', { wasRunning });
    if (wasRunning) {
      undo.push(`start TomEE with ${fromLabel} and check its health`, async () => {
        if (!(await tomeeStatus(ctx)).running) {
          state.touched = true; // e.g. a stop script that failed or timed out had stopped TomEE all the same
          await startTomee(ctx);
        }
        const health = await waitHealthy(ctx);
        if (!health.healthy) throw new Error(`${fromLabel} did not answer its health check either (${health.last})`);
      });
      await stopTomee(ctx);
      state.touched = true;
    } else {
      await refuseIfAnswering(ctx);
      ctx.emit({ type: 'warn', message: 'TomEE was not running before the update; it is left stopped (start it with the start script).' });
    }
    if (backup) undo.push(`put ${fromLabel} back into webapps`, () => swapWar(ctx, backup));
    if (databases) await dumpBeforeSwap(ctx, databases, from, undo, state, journal, options.restoreDumps ?? []);
    await journal?.record('swap', { temps: [swapTempPath(ctx)] });
    state.swapped = true;
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
    return unwindFailed(ctx, asLettoError(caught), undo, state, fromLabel, journal);
  } finally {
    await releaseBackupLock(lockPath, marker).catch(() => undefined);
    ctx.emit({ type: 'critical', active: false });
  }
}

/**
 * Step "dump" (TomEE stopped, before the swap): dumps LeTTo's databases and registers the undo that
 * restores those whose schema changed before the previous revision starts again; then loads `restore`
 * (`rollback --restore-database`: the target revision's dumps).
 * @throws the dump's LettoError, with `state.dumpFailed` set (the update is then refused, exit 1).
 */
async function dumpBeforeSwap(ctx: Context, databases: PreparedDumps, from: Revision | null, undo: UndoList, state: InstallState, journal: Journal | undefined, restore: DumpRecord[]): Promise<void> {
  const dumps = await dumpAll(ctx, databases, from, journal).catch((error: unknown) => {
    state.dumpFailed = true;
    throw error;
  });
  undo.push('restore the databases whose schema changed', async () => {
    state.database = await restoreChanged(ctx, dumps, journal);
  });
  // rollback --restore-database: the target revision's dumps, loaded once the current ones are safe
  if (restore.length > 0) await restoreDumps(ctx, restore, restore, async (restoring) => journal?.record('restore', { restoring }));
}

/** A dump that failed refuses the update: the dump's error, and that nothing was changed. */
function refusedByDump(error: LettoError, now: string): LettoError {
  return new LettoError(`${error.message} The update was refused before anything changed: no dump, no update; ${now}.`, { hint: error.hint, cause: error });
}

/**
 * After a failed install step: runs the undo list and tells how it ended: `failed` (nothing had been
 * touched), `rolled-back` (the previous revision answers again) or `rollback-failed` (the journal is
 * kept on disk for the next run). `touched`: TomEE was stopped; `swapped`: the WAR was swapped.
 */
async function unwindFailed(
  ctx: Context,
  error: LettoError,
  undo: UndoList,
  state: InstallState,
  fromLabel: string,
  journal: Journal | undefined,
): Promise<InstallOutcome> {
  const fromSentence = `R${fromLabel.slice(1)}`; // the same, starting a sentence
  ctx.emit({ type: 'warn', message: error.message });
  if (state.touched) await journal?.record('undo').catch(() => undefined);
  const unwind = await undo.unwind(ctx.emit);
  if (state.dumpFailed && unwind.ok) return { result: 'failed', error: refusedByDump(error, state.touched ? `TomEE runs ${fromLabel} again` : 'TomEE was not running and is left stopped') };
  if (!state.touched && unwind.ok) return { result: 'failed', error };
  if (state.touched && unwind.ok) {
    return {
      result: 'rolled-back',
      error,
      message:
        (state.swapped ? `${fromSentence} was put back and answers its health check again.` : `The WAR in webapps was not changed; TomEE runs ${fromLabel} again and it answers its health check.`) +
        (state.database ? ` ${state.database.sentence}` : ''),
      ...(state.database ? { database: state.database.summary } : {}),
    };
  }
  journal?.abandon(); // kept on disk: the next run (or \`letto-update recover\`) tries again
  const failures = unwind.failures.map((f) => `${f.label}: ${f.error instanceof Error ? f.error.message : String(f.error)}`).join('; ');
  return {
    result: 'rollback-failed',
    error,
    message: `Putting ${fromLabel} back failed too (${failures}). LeTTo may be down: look at ${catalinaOut(ctx.config)}, and install a backup from ${ctx.config.paths.backups} by hand or with \`letto-update rollback --to N\`.`,
  };
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
