import { localTime } from '../../time.js';
import { readFile, rm } from 'node:fs/promises';
import { MARKER_PREFIX, createBackupLock, inspectBackupLock, releaseBackupLock } from '../../store/backup-lock.js';
import { catalinaOut, warPath, type Context } from '../../context.js';
import { ExitCode, LettoError, asLettoError } from '../../errors.js';
import { isSameProcessAlive } from '../../system/proc.js';
import { readJournal, removeJournal, rewriteJournal, type JournalEntry } from '../../store/journal.js';
import { changedDumps, restoreDumps, type DatabaseOutcome } from '../../database/steps.js';
import type { Revision } from '../../revision.js';
import { backupTempPath } from '../../war/backups.js';
import { discardStaged } from '../../war/download.js';
import { waitHealthy } from './health.js';
import { swapTempPath, swapWar } from './swap.js';
import { startTomee, stopTomee, tomeeStatus } from './scripts.js';
import { sameContent } from '../../system/files.js';
import { readWarRevision, verifyWar } from '../../war/verify.js';
import { injectFault } from '../../system/fault.js';
import type { Recovery } from '../types.js';
import { describeJournal } from '../../store/journal.js';
import { releaseStaleMarker } from '../../store/backup-lock.js';


/** Steps before which nothing in webapps or TomEE had been changed. */
const BEFORE_STOP: ReadonlySet<JournalEntry['step']> = new Set(['download', 'backup', 'backup-lock']);


/**
 * Finishes or undoes what a killed update or rollback left, from its journal (call under the run lock):
 *
 * - killed after the new revision answered its health check (`installed`): only the clean-up is done
 *   (state, staged WAR, temporary files, backup-lock marker); the new revision stays;
 * - killed before TomEE was stopped (`download`, `backup`, `backup-lock`): temporary files and the
 *   marker are removed; nothing else had changed;
 * - otherwise the run is undone to the known-good revision: temporary files removed, TomEE stopped if
 *   it runs a WAR other than the backup, the backup put back with the same atomic swap, TomEE started
 *   (only if it ran before the killed run) and health-checked. The backup lock holds the watchdog off
 *   meanwhile.
 *
 * The journal is removed once this succeeded; when it fails, the journal stays so the next run tries again.
 * @param journal the unfinished journal ({@link unfinishedJournal} under the run lock).
 * @returns what was done.
 * @throws LettoError with exit 4 when the previous revision could not be brought back.
 */
export async function recoverJournal(ctx: Context, journal: JournalEntry): Promise<Recovery> {
  ctx.emit({ type: 'step', step: 'recover', message: `${describeJournal(journal)} Recovering first.` });
  for (const temp of new Set([...journal.temps, swapTempPath(ctx), ...(journal.backup ? [backupTempPath(journal.backup)] : [])])) {
    await rm(temp, { force: true });
  }
  // before anything else: the undo below takes the backup lock itself
  await releaseStaleMarker(ctx, journal);
  let recovery: Recovery;
  if (journal.step === 'installed') {
    recovery = await complete(ctx, journal);
  } else if (BEFORE_STOP.has(journal.step)) {
    recovery = { kind: 'untouched', journal, running: journal.from, message: `It had not changed webapps or TomEE yet; its temporary files were removed.` };
  } else {
    // a restore cut short: LeTTo must not be adopted on a half-loaded database
    recovery = (journal.step === 'restore' ? null : await adoptHealthy(ctx, journal)) ?? (await undo(ctx, journal));
  }
  await removeJournal(ctx.state.dir);
  ctx.emit({ type: 'notice', message: `Recovered from an interrupted ${journal.command}: ${recovery.message}` });
  return recovery;
}

/** The killed run had installed the new revision (health check passed): finish its bookkeeping. */
async function complete(ctx: Context, journal: JournalEntry): Promise<Recovery> {
  await ctx.state.write({ installed: journal.to, ...(journal.healthy ? { lastKnownGood: journal.to } : {}) });
  if (journal.target) await discardStaged(ctx, { path: journal.target, revision: journal.to });
  return {
    kind: 'completed',
    journal,
    running: journal.to,
    message: `It had already installed revision ${journal.to ?? 'unknown'}${journal.healthy ? ', which answered its health check' : ''}; only its clean-up was left, and is done.`,
  };
}

/** Steps after which TomEE may be starting the new revision: recovery waits for its health check, as the killed run would have. */
const STARTING: ReadonlySet<JournalEntry['step']> = new Set(['start', 'health']);

/**
 * LeTTo runs healthy on a complete WAR of a known revision: adopt it (record it as installed and
 * known-good) and change nothing. Null when TomEE does not run (status script), the WAR is not complete
 * or carries no revision, health_url does not answer HTTP 200, or the status script calls TomEE
 * stopped after all (an answer from another server does not count).
 */
async function adoptHealthy(ctx: Context, journal: JournalEntry): Promise<Recovery | null> {
  const war = await verifyWar(warPath(ctx.config)).catch(() => null);
  if (!war || war.revision === null) return null;
  const before = await tomeeStatus(ctx).catch(() => null);
  if (!before?.running) return null;
  let healthy: boolean;
  if (STARTING.has(journal.step)) {
    healthy = (await waitHealthy(ctx)).healthy;
  } else {
    const probe = await ctx.services.http.probe(ctx.config.tomee.health_url, 10);
    healthy = probe.ok && probe.status === 200;
  }
  if (!healthy) return null;
  const after = await tomeeStatus(ctx).catch(() => null);
  if (!after?.running) return null;
  const revision = war.revision;
  await ctx.state.write({ installed: revision, lastKnownGood: revision });
  if (revision === journal.to && journal.target) await discardStaged(ctx, { path: journal.target, revision });
  const which = revision === journal.to ? 'the revision it was installing' : revision === journal.from ? 'the revision it started from' : 'put there by someone else';
  return {
    kind: 'adopted',
    journal,
    running: revision,
    message: `LeTTo runs revision ${revision} (${which}) and answers its health check (TomEE process ${after.pid}); it was left running as it is and recorded as installed.`,
  };
}

/** Puts the backup back (if webapps holds something else), starts TomEE if it ran before, checks health. */
async function undo(ctx: Context, journal: JournalEntry): Promise<Recovery> {
  const lockPath = ctx.config.paths.backup_lock;
  const marker = await createBackupLock(lockPath).catch(() => null); // a running backup's lock holds the watchdog off too
  ctx.emit({ type: 'critical', active: true });
  const label = `revision ${journal.from ?? 'unknown'}`;
  try {
    const war = warPath(ctx.config);
    const backup = await usableBackup(ctx, journal);
    let putBack = false;
    // TomEE runs again afterwards if it ran before the killed run, or if someone started it since
    const runningNow = (await tomeeStatus(ctx)).running;
    if (backup && !(await sameContent(war, backup))) {
      if (runningNow) await stopTomee(ctx);
      await swapWar(ctx, { path: backup, revision: journal.from });
      injectFault('recover:swapped');
      putBack = true;
    }
    // without a usable backup, the WAR in webapps stays: it is complete (the swap is one rename)
    const running = backup ? journal.from : await readWarRevision(war).catch(() => null);
    await ctx.state.write({ installed: running });
    const database = await recoverDatabases(ctx, journal);
    const note = database ? ` ${database.sentence}` : '';
    const field = database ? { database: database.summary } : {};
    const what = putBack
      ? `${label} was put back into webapps`
      : backup
        ? `webapps holds ${label} already`
        : `no usable backup of ${label}, so webapps keeps revision ${running ?? 'unknown'}`;
    if (!journal.wasRunning && !runningNow) {
      return { kind: 'undone', journal, running, message: `It was undone: ${what}; TomEE was not running before and is left stopped.${note}`, ...field };
    }
    if (!(await tomeeStatus(ctx)).running) await startTomee(ctx);
    const health = await waitHealthy(ctx);
    if (!health.healthy) {
      throw new LettoError(`Revision ${running ?? 'unknown'} did not answer its health check (${health.last}).`, {});
    }
    const after = await tomeeStatus(ctx);
    if (!after.running) {
      throw new LettoError(`${ctx.config.tomee.health_url} answers HTTP 200, but the status script says TomEE is stopped: the answer does not come from the TomEE letto-update manages (another server on that port, or a status script that looks at the wrong PID file).`, {});
    }
    return { kind: 'undone', journal, running, message: `It was undone: ${what}; TomEE runs and answers its health check.${note}`, ...field };
  } catch (caught) {
    const error = asLettoError(caught);
    throw new LettoError(`Recovering from the interrupted ${journal.command} failed: ${error.message} LeTTo may be down.`, {
      exitCode: ExitCode.rollbackFailed,
      hint: `Look at ${catalinaOut(ctx.config)}; fix the cause and run \`letto-update recover\` again (the journal ${ctx.state.dir}/journal.json is kept until it succeeds).`,
      cause: caught,
    });
  } finally {
    if (marker) await releaseBackupLock(lockPath, marker).catch(() => undefined);
    ctx.emit({ type: 'critical', active: false });
  }
}

/**
 * The killed run's dumps (journal `dumps`): each database whose schema changed since its dump, or whose
 * restore was cut short (step `restore`), is restored with TomEE stopped; the others are left alone.
 * @returns what was done (null when the killed run had made no dump).
 */
async function recoverDatabases(ctx: Context, journal: JournalEntry): Promise<DatabaseOutcome | null> {
  if (!journal.dumps?.length) return null;
  const changed = await changedDumps(ctx, journal.dumps, journal.step === 'restore' ? (journal.restoring ?? []) : []);
  if (changed.length > 0 && (await tomeeStatus(ctx)).running) await stopTomee(ctx);
  return restoreDumps(ctx, journal.dumps, changed, (restoring) => rewriteJournal(ctx, { ...journal, step: 'restore', restoring }));
}

/**
 * The killed run's backup if it is a complete WAR of the revision it was made from; null when the run
 * made none (webapps held no WAR) or it is missing or damaged (then a warning says so).
 */
async function usableBackup(ctx: Context, journal: JournalEntry): Promise<string | null> {
  if (!journal.backup) return null;
  try {
    await verifyWar(journal.backup, journal.from ?? undefined);
    return journal.backup;
  } catch (error) {
    ctx.emit({ type: 'warn', message: `The backup ${journal.backup} is not usable (${(error as Error).message}); the WAR in webapps is kept.` });
    return null;
  }
}

