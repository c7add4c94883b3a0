import type { Context, WarFile } from './context.js';
import { LettoError } from './errors.js';
import { assertNoBackupRunning, beforeDownload, installWar } from './install.js';
import { notifyAfter } from './notify.js';
import type { Revision } from './revision.js';
import { listBackups } from './steps/backup.js';
import { readInstalled } from './steps/check.js';
import { downloadRevision } from './steps/download.js';
import { concludeInstall, recordedRun, type Known, type Reporter, type RunReport } from './run.js';
import { verifyWar } from './war.js';
import type { Journal } from './journal.js';

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
  const known: Known = { from: null, to: options.to ?? null };
  return notifyAfter(ctx, 'rollback', known, () =>
    recordedRun(ctx, 'rollback', known, (report, journal) => rollbackSteps(ctx, options, known, report, journal)),
  );
}

async function rollbackSteps(ctx: Context, options: RollbackOptions, known: Known, report: Reporter, journal: Journal): Promise<RunReport> {
  await assertNoBackupRunning(ctx);
  const from = (known.from = (await readInstalled(ctx)).revision);
  const to = (known.to = options.to ?? (await previousRevision(ctx, from)));
  if (to === null) {
    throw new LettoError('No earlier revision is known to roll back to (no recorded update, no local backup).', {
      hint: 'Name one with `letto-update rollback --to N`; `letto-update list --remote` shows the archive.',
    });
  }
  if (to === from) return report('current', `Revision ${to} is already installed; nothing to do.`);
  if (options.confirm && !(await options.confirm(`Roll LeTTo back from revision ${from ?? 'unknown'} to ${to}; TomEE will be restarted. Continue?`))) {
    return report('cancelled', 'Cancelled; nothing was changed.');
  }
  await beforeDownload(ctx, from, to, journal);
  const war = await findWar(ctx, to);
  return concludeInstall(ctx, await installWar(ctx, from, war, journal), war, from, report);
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
