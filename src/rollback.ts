import type { Context, WarFile } from './context.js';
import { LettoError } from './errors.js';
import { assertNoBackupRunning, installWar } from './install.js';
import { acquireRunLock } from './lock.js';
import type { Revision } from './revision.js';
import { listBackups } from './steps/backup.js';
import { readInstalled } from './steps/check.js';
import { discardStaged, downloadRevision } from './steps/download.js';
import { elapsedSeconds, outcomeReport, record, recordFailure, type Known, type RunReport } from './update.js';
import { verifyWar } from './war.js';

/** Options of `letto-update rollback`. */
export interface RollbackOptions {
  /** Revision to go to; default: the one installed before the current one. */
  to?: Revision;
  confirm?: (question: string) => Promise<boolean>;
}

/**
 * The revision installed before `current`: the `from` of the last successful run that installed
 * `current`, else the newest local backup older than `current`. Null when neither is known.
 */
export async function previousRevision(ctx: Context, current: Revision | null): Promise<Revision | null> {
  const runs = await ctx.state.runs();
  for (let i = runs.length - 1; i >= 0; i--) {
    const run = runs[i]!;
    if (run.result === 'updated' && run.to === current && run.from !== null && run.from !== current) return run.from;
  }
  const backups = await listBackups(ctx);
  return backups.find((b) => current === null || b.revision < current)?.revision ?? null;
}

/**
 * `rollback`: installs an older revision with the same runbook as `update` (backup, watchdog-safe
 * restart, health check, automatic return to the current revision on failure). The WAR comes from the
 * local backups, else from the server's `archiv/`.
 * @throws LettoError for failures before the server was touched (exit 1), config (2) or busy (75).
 */
export async function runRollback(ctx: Context, options: RollbackOptions): Promise<RunReport> {
  const started = ctx.services.clock.now();
  await ctx.state.ensure();
  const lock = await acquireRunLock(ctx.state.dir, 'rollback', { account: ctx.serviceUser });
  const known: Known = { from: null, to: options.to ?? null };
  try {
    const report = await rollbackSteps(ctx, options, started, known);
    await record(ctx, report);
    return report;
  } catch (error) {
    await recordFailure(ctx, 'rollback', error, known, started);
    throw error;
  } finally {
    await lock.release();
  }
}

async function rollbackSteps(ctx: Context, options: RollbackOptions, started: Date, known: Known): Promise<RunReport> {
  await assertNoBackupRunning(ctx);
  const from = (known.from = (await readInstalled(ctx)).revision);
  const to = (known.to = options.to ?? (await previousRevision(ctx, from)));
  if (to === null) {
    throw new LettoError('No earlier revision is known to roll back to (no recorded update, no local backup).', {
      hint: 'Name one with `letto-update rollback --to N`; `letto-update list --remote` shows the archive.',
    });
  }
  const report = (result: RunReport['result'], message: string, extra: Partial<RunReport> = {}): RunReport => ({
    command: 'rollback',
    result,
    from,
    to,
    message,
    durationSeconds: elapsedSeconds(ctx, started),
    ...extra,
  });
  if (to === from) return report('current', `Revision ${to} is already installed; nothing to do.`);
  if (options.confirm && !(await options.confirm(`Roll LeTTo back from revision ${from ?? 'unknown'} to ${to}: TomEE will be restarted. Continue?`))) {
    return report('cancelled', 'Cancelled; nothing was changed.');
  }
  const war = await findWar(ctx, to);
  const outcome = await installWar(ctx, from, war);
  if (outcome.result === 'failed') throw outcome.error;
  if (outcome.result === 'installed') {
    await discardStaged(ctx, war);
    const state = await ctx.state.read();
    await ctx.state.write({ installed: to, lastKnownGood: outcome.started ? to : state.lastKnownGood });
  }
  return outcomeReport(outcome, report, war.sha256);
}

/** The WAR of `revision`: a verified local backup, else downloaded from the archive into staging. */
async function findWar(ctx: Context, revision: Revision): Promise<WarFile> {
  const backup = (await listBackups(ctx)).find((b) => b.revision === revision);
  if (backup) {
    try {
      ctx.emit({ type: 'step', step: 'verify', message: `Verifying the backup ${backup.path}` });
      await verifyWar(backup.path, revision);
      return { path: backup.path, revision };
    } catch (error) {
      ctx.emit({ type: 'warn', message: `The backup ${backup.path} is not usable (${(error as Error).message}); trying the server's archive.` });
    }
  }
  return downloadRevision(ctx, revision, { kind: 'archive' });
}
