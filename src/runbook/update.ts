import { localTime } from '../time.js';
import type { TransferSummary } from '../war/delta/summary.js';
import type { Context } from '../context.js';
import { acquireRunLock } from '../store/lock.js';
import { notifyAfter } from '../report/notify.js';
import type { Revision } from '../revision.js';
import type { Journal } from '../store/journal.js';
import { adapterFor } from '../kinds/index.js';
import { concludeInstall, recordedRun, recoverAndRecord, type Known, type Reporter, type RunReport } from './run.js';
import { readAvailable } from '../war/check.js';
import { sourceFor } from '../war/download.js';
import { assertNoBackupRunning } from '../store/backup-lock.js';
import type { UpdateDecision } from '../kinds/plan-checks.js';
import type { WarSource } from '../revision.js';

export type { RunReport } from './run.js';

/** Options of `letto-update update`; the channel is `server.channel` of the config (`--channel` is merged in). */
export interface UpdateOptions {
  /** A specific revision (taken from the archive unless it is the channel's current one). */
  revision?: Revision;
  /** Install even when the revision is already installed or older. */
  force: boolean;
  /** Asked once the plan is known (the CLI asks on a terminal); false cancels. */
  confirm?: (question: string) => Promise<boolean>;
  /**
   * The nightly run (`--cron`): a revision that failed its health check before (`state.json`
   * `failedRevision`) is not tried again until a newer one appears or `force` is set.
   */
  cron?: boolean;
  /** Wait a random 0…N seconds before anything else (the run lock is not held while waiting). */
  randomDelaySeconds?: number;
}


/**
 * Reads the installed and the channel's revision and decides (no side effects). `from` is what is
 * installed, or, with an interrupted run waiting, what its recovery will leave.
 * @throws DownloadError when the revision file cannot be read.
 */
export async function decideUpdate(ctx: Context, options: Pick<UpdateOptions, 'revision' | 'force' | 'cron'>, from: Revision | null): Promise<UpdateDecision> {
  const { channel } = ctx.config.server;
  const available = await readAvailable(ctx, channel);
  const target = options.revision ?? available;
  if (!options.force && from !== null && target === from) {
    return { kind: 'current', from, target, available, message: `Revision ${from} is installed; it is the current ${options.revision ? 'one asked for' : channel + ' revision'}.` };
  }
  if (!options.force && options.revision === undefined && from !== null && from > target) {
    return { kind: 'current', from, target, available, message: `Installed revision ${from} is newer than the ${channel} revision ${target}; nothing to do (use --revision ${target} --force to go back).` };
  }
  const failed = (await ctx.state.read()).failedRevision;
  if (options.cron && !options.force && failed && failed.revision === target) {
    return {
      kind: 'skipped',
      from,
      target,
      available,
      message: `Revision ${target} failed its health check on ${localTime(failed.time)} and is not tried again by the nightly run; revision ${from ?? 'unknown'} stays (a newer revision, or \`update --force\`, tries again).`,
    };
  }
  const source = sourceFor(target, available, channel);
  const plan = `update LeTTo from revision ${from ?? 'unknown'} to ${target} (${source.kind === 'channel' ? `${channel} channel` : 'from the archive'}); ${adapterFor(ctx).restartNote}.`;
  return { kind: 'install', from, target, available, source, plan, failedBefore: failed && failed.revision === target ? localTime(failed.time) : null };
}

/**
 * `update`, the runbook: lock → backup lock check → read revisions → decide → download + verify →
 * backup → watchdog-safe stop/swap/start → health check → automatic rollback on failure → record.
 * (`update --dry-run` is {@link planUpdate} in src/runbook/plan.ts: the same decision and every check, no change.)
 * @throws LettoError for failures before the server was touched (exit 1), config (2) or busy (75).
 */
export async function runUpdate(ctx: Context, options: UpdateOptions): Promise<RunReport> {
  const known: Known = { from: null, to: options.revision ?? null, ...(options.cron ? { cron: true } : {}) };
  if (options.randomDelaySeconds) await ctx.services.clock.sleep(Math.random() * options.randomDelaySeconds);
  return notifyAfter(ctx, 'update', known, () =>
    recordedRun(ctx, 'update', known, (report, journal) => updateSteps(ctx, options, known, report, journal)),
  );
}

async function updateSteps(ctx: Context, options: UpdateOptions, known: Known, report: Reporter, journal: Journal): Promise<RunReport> {
  const { channel } = ctx.config.server;
  await assertNoBackupRunning(ctx);
  ctx.emit({ type: 'step', step: 'check', message: `Reading the installed revision and the ${channel} revision` });
  const adapter = adapterFor(ctx);
  const decision = await decideUpdate(ctx, options, (known.from = (await adapter.installed(ctx)).revision));
  known.to = decision.target;
  known.available = decision.available;
  if (decision.kind !== 'install') return report(decision.kind, decision.message);
  const { from, target, source, plan } = decision;
  if (decision.failedBefore) ctx.emit({ type: 'warn', message: `Revision ${target} failed its health check before (${decision.failedBefore}); trying it again.` });
  if (options.confirm && !(await options.confirm(`${plan.charAt(0).toUpperCase()}${plan.slice(1)} Continue?`))) {
    return report('cancelled', 'Cancelled; nothing was changed.');
  }
  ctx.emit({ type: 'step', step: 'check', message: adapter.beforeFetchNote });
  await adapter.beforeFetch(ctx, from, target, journal);
  const fetched = await adapter.fetch(ctx, target, { purpose: 'update', source });
  const done = await concludeInstall(ctx, await adapter.install(ctx, from, fetched, journal), fetched, from, report);
  await rememberOutcome(ctx, done);
  return done;
}

/** Remembers a revision that failed its health check (for `--cron`), and forgets it once one installs. */
async function rememberOutcome(ctx: Context, done: RunReport): Promise<void> {
  if ((done.result === 'rolled-back' || done.result === 'rollback-failed') && done.to !== null) {
    await ctx.state.write({ failedRevision: { revision: done.to, time: ctx.services.clock.now().toISOString(), reason: done.message } });
  } else if (done.result === 'updated') {
    const failed = (await ctx.state.read()).failedRevision;
    if (failed && done.to !== null && failed.revision <= done.to) await ctx.state.write({ failedRevision: null });
  }
}

/**
 * `download` (the `server.channel` revision, or `revision` from the archive): steps check, free
 * space and symlinks ({@link beforeDownload}), download and verify only, under the run lock; the
 * server is not touched.
 * @returns the staged WAR. @throws LettoError (exit 1, 2 or 75).
 */
export async function runDownload(ctx: Context, options: { revision?: Revision }): Promise<{ revision: Revision; path: string; sha256: string | null; download: TransferSummary | null }> {
  const adapter = adapterFor(ctx);
  await ctx.state.ensure();
  const lock = await acquireRunLock(ctx.state.dir, 'download', ctx.serviceUser);
  try {
    await recoverAndRecord(ctx);
    const { channel } = ctx.config.server;
    const available = await readAvailable(ctx, channel);
    const revision = options.revision ?? available;
    await adapter.beforeFetch(ctx, null, revision);
    const fetched = await adapter.fetch(ctx, revision, { purpose: 'update', source: sourceFor(revision, available, channel) });
    return { revision, path: fetched.where, sha256: fetched.sha256 ?? null, download: fetched.transfer ?? null };
  } finally {
    await lock.release();
  }
}
