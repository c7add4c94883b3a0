import type { Context } from '../context.js';
import { LettoError } from '../errors.js';
import { adapterFor } from '../kinds/index.js';
import { notifyAfter } from '../report/notify.js';
import type { Revision } from '../revision.js';
import { concludeInstall, recordedRun, type Known, type Reporter, type RunReport } from './run.js';
import type { Journal } from '../store/journal.js';
import { assertNoBackupRunning } from '../store/backup-lock.js';

/** Options of `letto-update rollback`. */
export interface RollbackOptions {
  /** Revision to go to; default: the one installed before the current one. */
  to?: Revision;
  confirm?: (question: string) => Promise<boolean>;
}

/**
 * The revision installed before `current`: the `from` of the last successful run that installed
 * `current`, else the newest revision kept locally (backup WAR, images) older than `current`. Null when neither is known.
 */
export async function previousRevision(ctx: Context, current: Revision | null): Promise<Revision | null> {
  const runs = await ctx.state.runs();
  for (let i = runs.length - 1; i >= 0; i--) {
    const run = runs[i]!;
    if (run.result === 'updated' && run.to === current && run.from !== null && run.from !== current) return run.from;
  }
  const backups = await adapterFor(ctx).listLocal(ctx);
  return backups.find((b) => current === null || b.revision < current)?.revision ?? null;
}

/**
 * `rollback`: installs an older revision with the same runbook as `update` (backup, watchdog-safe
 * restart, health check, automatic return to the current revision on failure). The WAR comes from the
 * local backups, else from the server's `archiv/`; a Docker install's images are used when kept
 * locally, else pulled from the registry.
 * @throws LettoError for failures before the server was touched (exit 1), config (2) or busy (75).
 */
export async function runRollback(ctx: Context, options: RollbackOptions): Promise<RunReport> {
  const known: Known = { from: null, to: options.to ?? null };
  return notifyAfter(ctx, 'rollback', known, () =>
    recordedRun(ctx, 'rollback', known, (report, journal) => rollbackSteps(ctx, options, known, report, journal)),
  );
}

async function rollbackSteps(ctx: Context, options: RollbackOptions, known: Known, report: Reporter, journal: Journal): Promise<RunReport> {
  const adapter = adapterFor(ctx);
  await assertNoBackupRunning(ctx);
  const from = (known.from = (await adapter.installed(ctx)).revision);
  const to = (known.to = options.to ?? (await previousRevision(ctx, from)));
  if (to === null) {
    throw new LettoError('No earlier revision is known to roll back to (no recorded update, no local backup).', {
      hint: 'Name one with `letto-update rollback --to N`; `letto-update list --remote` shows the archive.',
    });
  }
  if (to === from) return report('current', `Revision ${to} is already installed; nothing to do.`);
  if (options.confirm && !(await options.confirm(`Roll LeTTo back from revision ${from ?? 'unknown'} to ${to}; ${adapter.restartNote}. Continue?`))) {
    return report('cancelled', 'Cancelled; nothing was changed.');
  }
  await adapter.beforeFetch(ctx, from, to, journal);
  const fetched = await adapter.fetch(ctx, to, { purpose: 'rollback' });
  return concludeInstall(ctx, await adapter.install(ctx, from, fetched, journal), fetched, from, report);
}
