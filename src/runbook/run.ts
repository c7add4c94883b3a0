import type { Context } from '../context.js';
import { BusyError, LettoError } from '../errors.js';
import { Journal } from '../store/journal.js';
import { acquireRunLock } from '../store/lock.js';
import type { Revision } from '../revision.js';
import type { TransferSummary } from '../war/delta/summary.js';
import type { LogTail } from '../system/log-tail.js';
import type { RunRecord } from '../store/state.js';
import { adapterFor, adapterOfJournal } from '../kinds/index.js';
import type { Fetched } from '../kinds/types.js';
import { settleScripts } from '../store/script-groups.js';
import { writeMetricsTextfile } from '../report/metrics-textfile.js';
import type { InstallOutcome, Recovery } from '../kinds/types.js';
import { describeJournal, unfinishedJournal } from '../store/journal.js';
import { elapsedSeconds } from '../time.js';

/**
 * What an update or rollback did. `result` maps to the exit code: `updated`/`current`/`dry-run` 0,
 * `cancelled` 1, `rolled-back` 3, `rollback-failed` 4; failures that end earlier are thrown as
 * LettoError (exit 1, 2 or 75) and recorded as `failed` or `busy`.
 */
export interface RunReport {
  command: 'update' | 'rollback' | 'recover';
  result: 'updated' | 'current' | 'skipped' | 'dry-run' | 'cancelled' | 'failed' | 'busy' | 'rolled-back' | 'rollback-failed' | 'recovered';
  from: Revision | null;
  to: Revision | null;
  message: string;
  /** For failures: what to do next. */
  hint?: string;
  /** SHA-256 (hex) of the WAR installed or attempted. */
  sha256?: string;
  /** What downloading the WAR fetched ("fetched 12.3 MiB of 248 MiB; 95 % reused from revision 6885"). */
  download?: TransferSummary;
  durationSeconds: number;
  /** For a failed health check of a Docker install: the logs of the services that failed it (secrets taken out), for the notice. */
  log?: LogTail;
  /** `update`: the revision the channel offered when the run read it. */
  available?: Revision | null;
  /** Seconds LeTTo was down: from stopping it until it answered its health check again, or the rollback ended (absent: not stopped). */
  downtimeSeconds?: number;
  /** What an automatic rollback or a recovery did with LeTTo's databases (`[database]`). */
  database?: 'restored' | 'left alone';
}

/** Revisions learnt so far in a run, so that a failure can still be recorded with them. */
export interface Known {
  from: Revision | null;
  to: Revision | null;
  /** `update`: the channel's revision once read. */
  available?: Revision | null;
  /** The nightly run (`update --cron`), recorded as such. */
  cron?: boolean;
}

/** Builds a report of this run: `report(result, message, extra)`. */
export type Reporter = (result: RunReport['result'], message: string, extra?: Partial<RunReport>) => RunReport;

/** A {@link Reporter} for a run starting now, with the revisions known at report time. */
export function reporter(ctx: Context, command: RunReport['command'], known: Known): Reporter {
  const started = ctx.services.clock.now();
  return (result, message, extra = {}) => ({
    command,
    result,
    from: known.from,
    to: known.to,
    message,
    durationSeconds: elapsedSeconds(ctx, started),
    ...(known.available !== undefined ? { available: known.available } : {}),
    ...extra,
  });
}

/**
 * Runs `steps` of an update or rollback under the run lock and records how it ended in `runs.jsonl`:
 * the returned report, or the LettoError it threw (as `failed`, or `busy` for a running backup).
 * First, an unfinished journal of a killed run is recovered ({@link recoverAndRecord}). `steps` get a
 * {@link Journal} to record each step that changes the machine; it is removed when the run concludes
 * (kept only when putting the previous revision back failed, or when the run failed after it had
 * installed the new revision, so that the next run finishes the job).
 * @throws BusyError (75) when another run holds the lock; LettoError (4) when recovery failed; whatever `steps` throws.
 */
export async function recordedRun(
  ctx: Context,
  command: 'update' | 'rollback',
  known: Known,
  steps: (report: Reporter, journal: Journal) => Promise<RunReport>,
): Promise<RunReport> {
  const report = reporter(ctx, command, known);
  const cron = known.cron ? { cron: true } : {};
  const downtime = watchDowntime(ctx);
  await ctx.state.ensure();
  const lock = await acquireRunLock(ctx.state.dir, command, ctx.serviceUser);
  try {
    await recoverAndRecord(ctx);
    const journal = new Journal(ctx, command);
    try {
      const done = { ...(await steps(report, journal)), ...downtime.seconds() };
      await journal.finish();
      await record(ctx, done, cron);
      return done;
    } catch (error) {
      if (journal.current?.step !== 'installed') await journal.finish().catch(() => undefined);
      if (error instanceof LettoError) {
        // recording must not hide the original error
        const failed = report(error instanceof BusyError ? 'busy' : 'failed', error.message, { hint: error.hint, ...downtime.seconds() });
        await record(ctx, failed, cron).catch(() => undefined);
      }
      throw error;
    }
  } finally {
    downtime.stop();
    await lock.release();
  }
}

/**
 * Measures LeTTo's downtime in a run from the adapters' `critical` events (emitted from just before
 * LeTTo is stopped until its health check passed, or the rollback ended). Wraps `ctx.emit` until `stop`.
 * @returns `seconds()`: `{ downtimeSeconds }` (one decimal) once a critical window closed, else `{}`.
 */
function watchDowntime(ctx: Context): { seconds(): { downtimeSeconds?: number }; stop(): void } {
  const emit = ctx.emit;
  let since: Date | null = null;
  let total: number | null = null;
  ctx.emit = (event) => {
    if (event.type === 'critical' && event.active) since = ctx.services.clock.now();
    if (event.type === 'critical' && !event.active && since) {
      total = (total ?? 0) + elapsedSeconds(ctx, since);
      since = null;
    }
    emit(event);
  };
  return {
    seconds: () => (total === null ? {} : { downtimeSeconds: Math.round(total * 10) / 10 }),
    stop: () => {
      ctx.emit = emit;
    },
  };
}

/**
 * Waits for (and if need be ends) TomEE scripts a killed run left running ({@link settleScripts}), then
 * recovers an unfinished journal ({@link recoverJournal}) and records it in `runs.jsonl` as a
 * `recover` run (`recovered`, or `rollback-failed` when it failed). Call under the run lock.
 * @returns what was done, or null when there was nothing to recover.
 * @throws LettoError (exit 4) when the previous revision could not be brought back.
 */
export async function recoverAndRecord(ctx: Context): Promise<Recovery | null> {
  const started = ctx.services.clock.now();
  // first of all: a script a killed run left running must not be raced (src/store/script-groups.ts)
  await settleScripts(ctx);
  const journal = await unfinishedJournal(ctx, true);
  if (!journal) return null;
  try {
    const recovery = await adapterOfJournal(journal).recover(ctx, journal);
    await record(ctx, recoveredReport(recovery, elapsedSeconds(ctx, started)));
    return recovery;
  } catch (error) {
    if (error instanceof LettoError) {
      const failed = { command: 'recover', result: 'rollback-failed', from: journal.from, to: journal.from, message: error.message, durationSeconds: elapsedSeconds(ctx, started) } as const;
      await record(ctx, failed).catch(() => undefined);
    }
    throw error;
  }
}

/** The report (and runs.jsonl line) of a recovery: what the killed run was doing, and what was done about it. */
function recoveredReport(recovery: Recovery, durationSeconds: number): RunReport {
  return {
    command: 'recover',
    result: 'recovered',
    from: recovery.journal.from,
    to: recovery.running,
    message: `${describeJournal(recovery.journal)} ${recovery.message}`,
    durationSeconds,
    ...(recovery.database ? { database: recovery.database } : {}),
  };
}

/**
 * `letto-update recover`: under the run lock, finishes or undoes what a killed update or rollback left.
 * @returns `recovered` with what was done, or `current` when there was nothing to recover.
 * @throws BusyError (75) while another run is in progress; LettoError (4) when recovery failed.
 */
export async function runRecover(ctx: Context): Promise<RunReport> {
  const started = ctx.services.clock.now();
  await ctx.state.ensure();
  const lock = await acquireRunLock(ctx.state.dir, 'recover', ctx.serviceUser);
  try {
    const recovery = await recoverAndRecord(ctx);
    const durationSeconds = elapsedSeconds(ctx, started);
    if (!recovery) return { command: 'recover', result: 'current', from: null, to: null, message: 'No interrupted run to recover; nothing was changed.', durationSeconds };
    return recoveredReport(recovery, durationSeconds);
  } finally {
    await lock.release();
  }
}

/**
 * After an adapter's `install`: for an installed revision, remember it (and as last known-good when it
 * answered its health check), then the adapter's clean-up and retention (staged WAR, old backups or
 * images); then the report.
 * @throws the LettoError of a `failed` outcome (nothing changed).
 */
export async function concludeInstall(ctx: Context, outcome: InstallOutcome, war: Fetched, from: Revision | null, report: Reporter): Promise<RunReport> {
  const extra = { ...(war.sha256 ? { sha256: war.sha256 } : {}), ...(war.transfer ? { download: war.transfer } : {}) };
  switch (outcome.result) {
    case 'failed':
      throw outcome.error;
    case 'installed': {
      const state = await ctx.state.read();
      await ctx.state.write({ installed: war.revision, lastKnownGood: outcome.started ? war.revision : state.lastKnownGood });
      await adapterFor(ctx).conclude(ctx, war, [from, state.lastKnownGood, war.revision]);
      return report('updated', outcome.message, extra);
    }
    case 'rolled-back':
    case 'rollback-failed':
      return report(outcome.result, `${outcome.error.message} ${outcome.message}`, { ...extra, hint: outcome.error.hint, ...(outcome.log ? { log: outcome.log } : {}), ...(outcome.database ? { database: outcome.database } : {}) });
  }
}

/**
 * Appends a finished run to the state folder's runs log (dry runs and cancelled runs are not runs),
 * then rewrites the metrics textfile (`[metrics] textfile`, src/report/metrics-textfile.ts) when one is set.
 */
export async function record(ctx: Context, report: RunReport, extra: { cron?: boolean } = {}): Promise<void> {
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
    ...(report.download ? { download: report.download } : {}),
    ...(report.command === 'update' ? { channel: ctx.config.server.channel } : {}),
    ...(report.available !== undefined ? { available: report.available } : {}),
    ...(extra.cron ? { cron: true } : {}),
    ...(report.downtimeSeconds !== undefined ? { downtimeSeconds: report.downtimeSeconds } : {}),
    ...(report.database ? { database: report.database } : {}),
  };
  await ctx.state.recordRun(entry);
  await writeMetricsTextfile(ctx);
}

