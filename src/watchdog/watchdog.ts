import { createBackupLock, inspectBackupLock, releaseBackupLock } from '../store/backup-lock.js';
import type { Context } from '../context.js';
import { BusyError, asLettoError } from '../errors.js';
import { checkHealth, stopsTomee, type HealthReport } from '../report/health-check.js';
import { acquireRunLock, runLockHolder } from '../store/lock.js';
import type { LogTail } from '../system/log-tail.js';
import { writeMetricsTextfile } from '../report/metrics-textfile.js';
import { notify } from '../report/notify.js';
import { recoverAndRecord } from '../runbook/run.js';
import { adapterFor } from '../kinds/index.js';
import { describePause, readCounters, readPause, removePause, writeCounters, pauseFile } from './state.js';
import { elapsedSeconds } from '../time.js';

/** Seconds one watchdog probe may take before the check counts as failed. */
const PROBE_TIMEOUT = 10;

/**
 * What one watchdog check decided:
 * - `healthy`: LeTTo answered HTTP 200 (counter reset);
 * - `paused`: a maintenance pause is set (nothing checked);
 * - `update-running`: an update or rollback holds the run lock (nothing counted: it stops TomEE on purpose);
 * - `unknown`: the status script cannot be run (nothing counted, nothing restarted);
 * - `grace`: failed, but within `watchdog.grace` seconds of the last restart (a slow start is no failure);
 * - `counting`: failed, fewer than `watchdog.failures` in a row;
 * - `backup-running`: enough failures, but the backup lock exists: no restart during a backup;
 * - `restarted` / `restart-failed`: TomEE (a Docker install: the LeTTo containers) was restarted and LeTTo answers again / does not.
 */
export type WatchdogAction = 'healthy' | 'paused' | 'update-running' | 'unknown' | 'grace' | 'counting' | 'backup-running' | 'restarted' | 'restart-failed';

/** One check's outcome: the action, the failure counter after it, and a line for the log. */
export interface WatchdogReport {
  action: WatchdogAction;
  failures: number;
  threshold: number;
  message: string;
  health: HealthReport | null;
}

/**
 * One watchdog check (`watchdog --once`; the loop calls it every `watchdog.interval` seconds):
 * health check → count → after `watchdog.failures` failed checks in a row, restart TomEE as the service
 * user — never during a maintenance pause, while the backup lock exists, while an update holds the run
 * lock, or within `watchdog.grace` seconds after the last restart. A restart holds the run lock (no
 * update starts meanwhile) and the backup lock with our marker (LeTTo's own watchdog keeps still), is
 * recorded in runs.jsonl and notified. Counters live in `<state>/watchdog.json`. A restart, and a check
 * whose action differs from the last one, rewrites the metrics textfile (`[metrics] textfile`).
 * @throws only for config/state-folder problems (LettoError).
 */
export async function watchdogOnce(ctx: Context): Promise<WatchdogReport> {
  const { failures: threshold, grace } = ctx.config.watchdog;
  const counters = await readCounters(ctx);
  const now = ctx.services.clock.now();
  const done = async (action: WatchdogAction, message: string, health: HealthReport | null, failures = counters.failures): Promise<WatchdogReport> => {
    await writeCounters(ctx, { ...counters, failures, lastCheck: now.toISOString(), lastAction: action });
    if (action !== counters.lastAction) await writeMetricsTextfile(ctx);
    return { action, failures, threshold, message, health };
  };

  const pause = await readPause(ctx);
  if (pause) return done('paused', `paused for maintenance ${describePause(pause)}`, null, 0);
  await removePause(ctx).catch(() => undefined); // an expired pause
  const holder = await runLockHolder(ctx.state.dir);
  if (holder && stopsTomee(holder.command)) return done('update-running', `${holder.command} in progress (process ${holder.pid}); not checking`, null);

  const health = await checkHealth(ctx, { warning: PROBE_TIMEOUT, critical: null, timeout: PROBE_TIMEOUT });
  if (health.httpStatus === 200) return done('healthy', `LeTTo answers: ${health.summary}`, health, 0);
  if (health.state === 'UNKNOWN') return done('unknown', `cannot check: ${health.summary}`, health);
  const sinceRestart = counters.lastRestart ? (now.getTime() - Date.parse(counters.lastRestart)) / 1000 : Infinity;
  if (sinceRestart < grace) {
    return done('grace', `LeTTo does not answer (${health.summary}); restarted ${Math.round(sinceRestart)} s ago, within the grace of ${grace} s: not counted`, health, 0);
  }
  const failures = counters.failures + 1;
  if (failures < threshold) return done('counting', `LeTTo does not answer (${health.summary}): failure ${failures} of ${threshold}`, health, failures);
  if ((await inspectBackupLock(ctx.config.paths.backup_lock)).kind === 'backup') {
    return done('backup-running', `LeTTo does not answer (${health.summary}), ${failures} failures; a backup is running (${ctx.config.paths.backup_lock}): no restart during a backup`, health, failures);
  }
  return restart(ctx, health, failures, (action, message) => done(action, message, health, failures));
}

/**
 * The restart after `failures` failed checks. `keep` ends the check without restarting (another run
 * holds the lock, or a backup started), counting as {@link watchdogOnce} does.
 */
async function restart(ctx: Context, health: HealthReport, failures: number, keep: (action: WatchdogAction, message: string) => Promise<WatchdogReport>): Promise<WatchdogReport> {
  const { failures: threshold } = ctx.config.watchdog;
  const started = ctx.services.clock.now();
  const adapter = adapterFor(ctx);
  let lock;
  try {
    await ctx.state.ensure(); // a first restart on a machine where no update ran yet: no state folder
    lock = await acquireRunLock(ctx.state.dir, 'watchdog', ctx.serviceUser);
  } catch (error) {
    if (error instanceof BusyError) return keep('update-running', `LeTTo does not answer, but another run holds the lock: ${error.message}`);
    throw error;
  }
  const lockPath = ctx.config.paths.backup_lock;
  let marker: string | null = null;
  try {
    marker = await createBackupLock(lockPath).catch(() => null);
    if (marker === null && (await inspectBackupLock(lockPath)).kind === 'backup') {
      return await keep('backup-running', `LeTTo does not answer; a backup started (${lockPath}): no restart`);
    }
    ctx.emit({ type: 'critical', active: true });
    let action: WatchdogAction;
    let message: string;
    let log: LogTail | null = null;
    try {
      // an update or rollback killed midway is finished or undone first (src/kinds/tomee/recover.ts), rather than
      // TomEE restarted on whatever that run left in webapps
      const recovered = await recoverAndRecord(ctx);
      const probe = recovered ? await ctx.services.http.probe(adapterFor(ctx).health(ctx).url, PROBE_TIMEOUT) : null;
      if (recovered && probe?.ok && probe.status === 200) {
        action = 'restarted';
        message = `LeTTo did not answer ${checks(failures)} in a row (${health.summary}); an interrupted ${recovered.journal.command} was recovered: ${recovered.message}`;
      } else {
        await adapter.restart(ctx);
        const after = await adapter.waitHealthy(ctx);
        action = after.healthy ? 'restarted' : 'restart-failed';
        message = after.healthy
          ? `LeTTo did not answer ${checks(failures)} in a row (${health.summary}); ${adapter.restarted.ok} after ${after.seconds} s.`
          : `LeTTo did not answer ${checks(failures)} in a row (${health.summary}); ${adapter.restarted.failed}${after.stopped ? `: ${after.stopped}` : ` within ${adapter.health(ctx).timeout} s (last: ${after.last})`}.`;
        if (after.log) log = after.log;
      }
    } catch (error) {
      action = 'restart-failed';
      message = `LeTTo did not answer ${checks(failures)} in a row (${health.summary}); restarting ${adapter.serverName} failed: ${asLettoError(error).message}`;
    } finally {
      ctx.emit({ type: 'critical', active: false });
    }
    await writeCounters(ctx, { failures: 0, lastCheck: started.toISOString(), lastRestart: ctx.services.clock.now().toISOString(), lastAction: action });
    const durationSeconds = elapsedSeconds(ctx, started);
    const hint = action === 'restart-failed' ? adapter.restartFailedHint(ctx) : undefined;
    await ctx.state
      .recordRun({ time: ctx.services.clock.now().toISOString(), command: 'watchdog', from: health.revision, to: health.revision, result: action === 'restarted' ? 'restarted' : 'restart-failed', durationSeconds, message })
      .catch((error: Error) => ctx.emit({ type: 'warn', message: `Could not record the restart: ${error.message}` }));
    await writeMetricsTextfile(ctx);
    await notify(ctx, { command: 'watchdog', result: action, from: health.revision, to: health.revision, durationSeconds, message, ...(hint ? { hint } : {}), ...(log ? { log } : {}) });
    return { action, failures: 0, threshold, message, health };
  } finally {
    if (marker) await releaseBackupLock(lockPath, marker).catch(() => undefined);
    await lock.release();
  }
}

/** `1 check`, `3 checks`. */
function checks(n: number): string {
  return `${n} check${n === 1 ? '' : 's'}`;
}

/**
 * The watchdog loop (`watchdog` without `--once`): {@link watchdogOnce} every `watchdog.interval`
 * seconds until `signal` aborts (checked after each check: a stop asked for during a restart ends the
 * loop once that restart is done). `onReport` receives every check's report.
 */
export async function watchdogLoop(ctx: Context, onReport: (report: WatchdogReport) => void, signal?: AbortSignal): Promise<void> {
  while (!signal?.aborted) {
    try {
      onReport(await watchdogOnce(ctx));
    } catch (error) {
      ctx.emit({ type: 'warn', message: `watchdog check failed: ${asLettoError(error).message}` });
    }
    if (signal?.aborted) break; // told to stop during a restart: that restart is done, no further check
    await ctx.services.clock.sleep(ctx.config.watchdog.interval);
  }
}

export { pauseFile };
