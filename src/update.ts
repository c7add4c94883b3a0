import type { Context } from './context.js';
import { BusyError, LettoError } from './errors.js';
import { assertNoBackupRunning, installWar, type InstallOutcome } from './install.js';
import { acquireRunLock } from './lock.js';
import type { Channel, Revision } from './revision.js';
import type { RunRecord } from './state.js';
import { pruneBackups } from './steps/backup.js';
import { readAvailable, readInstalled } from './steps/check.js';
import { discardStaged, downloadRevision, type WarSource } from './steps/download.js';

/** Options of `letto-update update`. */
export interface UpdateOptions {
  channel: Channel;
  /** A specific revision (taken from the archive unless it is the channel's current one). */
  revision?: Revision;
  /** Install even when the revision is already installed or older. */
  force: boolean;
  /** Plan only: read revisions, change nothing. */
  dryRun: boolean;
  /** Asked once the plan is known (the CLI asks on a terminal); false cancels. */
  confirm?: (question: string) => Promise<boolean>;
}

/**
 * What an update or rollback did. `result` maps to the exit code: `updated`/`current`/`dry-run` 0,
 * `failed`/`cancelled` 1, `rolled-back` 3, `rollback-failed` 4; errors that end earlier are thrown
 * as LettoError (exit 1, 2 or 75).
 */
export interface RunReport {
  command: 'update' | 'rollback';
  result: 'updated' | 'current' | 'dry-run' | 'cancelled' | 'failed' | 'busy' | 'rolled-back' | 'rollback-failed';
  from: Revision | null;
  to: Revision | null;
  message: string;
  /** For failures: what to do next. */
  hint?: string;
  sha256?: string;
  durationSeconds: number;
}

/**
 * `update`, the runbook: lock → backup lock check → read revisions → decide → download + verify →
 * backup → watchdog-safe stop/swap/start → health check → automatic rollback on failure → record.
 * @throws LettoError for failures before the server was touched (exit 1), config (2) or busy (75).
 */
export async function runUpdate(ctx: Context, options: UpdateOptions): Promise<RunReport> {
  if (options.dryRun) return updateSteps(ctx, options, ctx.services.clock.now(), { from: null, to: null });
  const started = ctx.services.clock.now();
  await ctx.state.ensure();
  const lock = await acquireRunLock(ctx.state.dir, 'update', { account: ctx.serviceUser });
  const known: Known = { from: null, to: options.revision ?? null };
  try {
    const report = await updateSteps(ctx, options, started, known);
    await record(ctx, report);
    return report;
  } catch (error) {
    await recordFailure(ctx, 'update', error, known, started);
    throw error;
  } finally {
    await lock.release();
  }
}

/** Revisions learnt so far in a run, so that a failure can still be recorded with them. */
export interface Known {
  from: Revision | null;
  to: Revision | null;
}

async function updateSteps(ctx: Context, options: UpdateOptions, started: Date, known: Known): Promise<RunReport> {
  await assertNoBackupRunning(ctx);
  ctx.emit({ type: 'step', step: 'check', message: `Reading the installed revision and the ${options.channel} revision` });
  const from = (known.from = (await readInstalled(ctx)).revision);
  const available = await readAvailable(ctx, options.channel);
  const target = (known.to = options.revision ?? available);
  const report = (result: RunReport['result'], message: string, extra: Partial<RunReport> = {}): RunReport => ({
    command: 'update',
    result,
    from,
    to: target,
    message,
    durationSeconds: seconds(ctx, started),
    ...extra,
  });

  if (!options.force && from !== null && target === from) {
    return report('current', `Revision ${from} is installed; it is the current ${options.revision ? 'one asked for' : options.channel + ' revision'}.`);
  }
  if (!options.force && options.revision === undefined && from !== null && from > target) {
    return report('current', `Installed revision ${from} is newer than the ${options.channel} revision ${target}; nothing to do (use --revision ${target} --force to go back).`);
  }
  const source: WarSource = target === available ? { kind: 'channel', channel: options.channel } : { kind: 'archive' };
  const plan = `Update LeTTo from revision ${from ?? 'unknown'} to ${target} (${source.kind === 'channel' ? `${options.channel} channel` : 'from the archive'}): TomEE will be restarted.`;
  if (options.dryRun) return report('dry-run', `Dry run: would ${plan.charAt(0).toLowerCase()}${plan.slice(1)}`);
  if (options.confirm && !(await options.confirm(`${plan} Continue?`))) return report('cancelled', 'Cancelled; nothing was changed.');

  const staged = await downloadRevision(ctx, target, source);
  const outcome = await installWar(ctx, from, staged);
  if (outcome.result === 'failed') throw outcome.error;
  if (outcome.result === 'installed') {
    await discardStaged(ctx, staged);
    const state = await ctx.state.read();
    await ctx.state.write({ installed: target, lastKnownGood: outcome.started ? target : state.lastKnownGood });
    await pruneBackups(ctx, [from, state.lastKnownGood, target]);
  }
  return outcomeReport(outcome, report, staged.sha256);
}

/** Records a run that ended with an error (exit 1 or 75) before it could report. */
export async function recordFailure(ctx: Context, command: RunReport['command'], error: unknown, known: Known, started: Date): Promise<void> {
  if (!(error instanceof LettoError)) return;
  await record(ctx, {
    command,
    result: error instanceof BusyError ? 'busy' : 'failed',
    from: known.from,
    to: known.to,
    message: error.message,
    hint: error.hint,
    durationSeconds: seconds(ctx, started),
  }).catch(() => undefined); // recording must not hide the original error
}

/** Maps an install outcome to a report. */
export function outcomeReport(
  outcome: Exclude<InstallOutcome, { result: 'failed' }>,
  report: (result: RunReport['result'], message: string, extra?: Partial<RunReport>) => RunReport,
  sha256: string | undefined,
): RunReport {
  const extra = sha256 ? { sha256 } : {};
  switch (outcome.result) {
    case 'installed':
      return report('updated', outcome.message, extra);
    case 'rolled-back':
    case 'rollback-failed':
      return report(outcome.result, `${outcome.error.message} ${outcome.message}`, { ...extra, hint: outcome.error.hint });
  }
}

/** Appends a finished run to the state folder's runs log. */
export async function record(ctx: Context, report: RunReport): Promise<void> {
  if (report.result === 'dry-run' || report.result === 'cancelled') return;
  const entry: RunRecord = {
    time: ctx.services.clock.now().toISOString(),
    command: report.command,
    from: report.from,
    to: report.to,
    result: report.result,
    durationSeconds: report.durationSeconds,
    message: report.message,
    ...(report.sha256 ? { sha256: report.sha256 } : {}),
  };
  await ctx.state.recordRun(entry);
}

function seconds(ctx: Context, started: Date): number {
  return Math.round((ctx.services.clock.now().getTime() - started.getTime()) / 100) / 10;
}
export { seconds as elapsedSeconds };

/**
 * `download`: steps check, download and verify only, under the run lock; the server is not touched.
 * @returns the staged WAR. @throws LettoError (exit 1, 2 or 75).
 */
export async function runDownload(ctx: Context, options: { channel: Channel; revision?: Revision }): Promise<{ revision: Revision; path: string; sha256: string | null }> {
  await ctx.state.ensure();
  const lock = await acquireRunLock(ctx.state.dir, 'download', { account: ctx.serviceUser });
  try {
    const available = await readAvailable(ctx, options.channel);
    const revision = options.revision ?? available;
    const source: WarSource = revision === available ? { kind: 'channel', channel: options.channel } : { kind: 'archive' };
    const war = await downloadRevision(ctx, revision, source);
    return { revision, path: war.path, sha256: war.sha256 ?? null };
  } finally {
    await lock.release();
  }
}
