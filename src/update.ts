import type { TransferSummary } from './delta/summary.js';
import type { Context } from './context.js';
import { assertNoBackupRunning } from './install.js';
import { acquireRunLock } from './lock.js';
import { notifyAfter } from './notify.js';
import type { Revision } from './revision.js';
import type { Journal } from './journal.js';
import { adapterFor } from './kinds/index.js';
import { concludeInstall, recordedRun, recoverAndRecord, reporter, type Known, type Reporter, type RunReport } from './run.js';
import { readAvailable } from './steps/check.js';
import { sourceFor } from './steps/download.js';
import { describeJournal, unfinishedJournal } from './recover.js';

export type { RunReport } from './run.js';

/** Options of `letto-update update`; the channel is `server.channel` of the config (`--channel` is merged in). */
export interface UpdateOptions {
  /** A specific revision (taken from the archive unless it is the channel's current one). */
  revision?: Revision;
  /** Install even when the revision is already installed or older. */
  force: boolean;
  /** Plan only: read revisions, change nothing. */
  dryRun: boolean;
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
 * `update`, the runbook: lock → backup lock check → read revisions → decide → download + verify →
 * backup → watchdog-safe stop/swap/start → health check → automatic rollback on failure → record.
 * @throws LettoError for failures before the server was touched (exit 1), config (2) or busy (75).
 */
export async function runUpdate(ctx: Context, options: UpdateOptions): Promise<RunReport> {
  const known: Known = { from: null, to: options.revision ?? null };
  // a dry run changes nothing, so it takes no lock and is not recorded
  if (options.dryRun) return updateSteps(ctx, options, known, reporter(ctx, 'update', known), null);
  if (options.randomDelaySeconds) await ctx.services.clock.sleep(Math.random() * options.randomDelaySeconds);
  return notifyAfter(ctx, 'update', known, () =>
    recordedRun(ctx, 'update', known, (report, journal) => updateSteps(ctx, options, known, report, journal)),
  );
}

async function updateSteps(ctx: Context, options: UpdateOptions, known: Known, report: Reporter, journal: Journal | null): Promise<RunReport> {
  const { channel } = ctx.config.server;
  const adapter = adapterFor(ctx);
  await assertNoBackupRunning(ctx);
  ctx.emit({ type: 'step', step: 'check', message: `Reading the installed revision and the ${channel} revision` });
  // a dry run does not recover an interrupted run (it changes nothing): it plans from what recovery would leave
  const interrupted = options.dryRun ? await unfinishedJournal(ctx, false) : null;
  const first = interrupted ? `Dry run: would first recover the interrupted run (${describeJournal(interrupted)}), then ` : '';
  const from = (known.from = interrupted ? (interrupted.step === 'installed' ? interrupted.to : interrupted.from) : (await adapter.installed(ctx)).revision);
  const available = await readAvailable(ctx, channel);
  const target = (known.to = options.revision ?? available);

  if (!options.force && from !== null && target === from) {
    return report(interrupted ? 'dry-run' : 'current', `${first}Revision ${from} is installed; it is the current ${options.revision ? 'one asked for' : channel + ' revision'}.`);
  }
  if (!options.force && options.revision === undefined && from !== null && from > target) {
    return report(interrupted ? 'dry-run' : 'current', `${first}Installed revision ${from} is newer than the ${channel} revision ${target}; nothing to do (use --revision ${target} --force to go back).`);
  }
  const failed = (await ctx.state.read()).failedRevision;
  if (options.cron && !options.force && failed && failed.revision === target) {
    return report('skipped', `Revision ${target} failed its health check on ${failed.time} and is not tried again by the nightly run; revision ${from ?? 'unknown'} stays (a newer revision, or \`update --force\`, tries again).`);
  }
  if (failed && failed.revision === target) ctx.emit({ type: 'warn', message: `Revision ${target} failed its health check before (${failed.time}); trying it again.` });
  const source = sourceFor(target, available, channel);
  const plan = `update LeTTo from revision ${from ?? 'unknown'} to ${target} (${source.kind === 'channel' ? `${channel} channel` : 'from the archive'}); ${adapter.restartNote}.`;
  if (options.dryRun) return report('dry-run', `${first || 'Dry run: would '}${plan}`);
  if (options.confirm && !(await options.confirm(`${plan.charAt(0).toUpperCase()}${plan.slice(1)} Continue?`))) {
    return report('cancelled', 'Cancelled; nothing was changed.');
  }
  ctx.emit({ type: 'step', step: 'check', message: adapter.beforeFetchNote });
  // a dry run has returned above: a real run always has its journal
  await adapter.beforeFetch(ctx, from, target, journal!);
  const fetched = await adapter.fetch(ctx, target, { purpose: 'update', source });
  const done = await concludeInstall(ctx, await adapter.install(ctx, from, fetched, journal!), fetched, from, report);
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
