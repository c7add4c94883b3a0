import type { Context } from '../context.js';
import { LettoError } from '../errors.js';
import { adapterFor } from '../kinds/index.js';
import { notifyAfter } from '../report/notify.js';
import type { Revision } from '../revision.js';
import { concludeInstall, recordedRun, type Known, type Reporter, type RunReport } from './run.js';
import type { Journal } from '../store/journal.js';
import { assertNoBackupRunning } from '../store/backup-lock.js';
import { databaseChoiceNeeded, planRollbackDatabase, type DatabaseChoice } from '../database/rollback.js';

/** Options of `letto-update rollback`. */
export interface RollbackOptions {
  /** Revision to go to; default: the one installed before the current one. */
  to?: Revision;
  confirm?: (question: string) => Promise<boolean>;
  /** `--restore-database` / `--keep-database`: needed when the schema differs from the target revision's dump (src/database/rollback.ts). */
  database?: DatabaseChoice;
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
  const database = await planRollbackDatabase(ctx, to, options.database);
  if (database.refused) throw databaseChoiceNeeded(database, to);
  if (database.note) ctx.emit({ type: 'step', step: 'check', message: database.note });
  if (options.confirm && !(await options.confirm(`Roll LeTTo back from revision ${from ?? 'unknown'} to ${to}; ${adapter.restartNote}. Continue?`))) {
    return report('cancelled', 'Cancelled; nothing was changed.');
  }
  await adapter.beforeFetch(ctx, from, to, journal);
  const fetched = await adapter.fetch(ctx, to, { purpose: 'rollback' });
  const done = await concludeInstall(ctx, await adapter.install(ctx, from, fetched, journal, { restoreDumps: database.restore }), fetched, from, report);
  return done.result === 'updated' && database.restore.length > 0 ? { ...done, message: `${done.message} ${database.note}`, database: 'restored' } : done;
}

/**
 * `rollback --dry-run`: the revisions and what the rollback would do with LeTTo's databases; changes
 * nothing, takes no lock. `refused`: the rollback would refuse (a database choice is needed).
 * @throws LettoError when no earlier revision is known or the database server cannot be asked.
 */
export async function planRollback(ctx: Context, options: RollbackOptions): Promise<{ from: Revision | null; to: Revision; message: string; refused: boolean; hint: string }> {
  const adapter = adapterFor(ctx);
  const from = (await adapter.installed(ctx)).revision;
  const to = options.to ?? (await previousRevision(ctx, from));
  if (to === null) throw new LettoError('No earlier revision is known to roll back to (no recorded update, no local backup).', { hint: 'Name one with `letto-update rollback --to N`.' });
  const database = await planRollbackDatabase(ctx, to, options.database);
  const refusal = database.refused ? databaseChoiceNeeded(database, to) : null;
  const note = database.note || (ctx.config.database ? '' : 'LeTTo\'s database is not dumped or restored: the config has no [database] section (see docs/database.md).');
  const message = `Dry run: would roll LeTTo back from revision ${from ?? 'unknown'} to ${to}; ${adapter.restartNote}. ${refusal ? `It would refuse: ${refusal.message}` : note}`.trim();
  return { from, to, message, refused: Boolean(refusal), hint: refusal?.hint ?? '' };
}
