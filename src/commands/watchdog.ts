import { adapterFor } from '../kinds/index.js';
import { localTime } from '../time.js';
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { stamp, type Output } from '../report/output.js';
import { watchdogLoop, watchdogOnce, type WatchdogReport } from '../watchdog/watchdog.js';
import { describePause, readCounters, readPause, removePause, writePause } from '../watchdog/state.js';
import { withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** The action argument of `watchdog`. */
export type WatchdogAction = 'run' | 'pause' | 'resume' | 'status';

/** Flags of `watchdog`; `for` in seconds. */
export interface WatchdogFlags {
  once?: boolean;
  for?: number;
  reason?: string;
}

/** `watchdog run|pause|resume|status` (see docs/usage.md). */
export function watchdogCommand(run: CommandRun, action: WatchdogAction, opts: WatchdogFlags): Promise<number> {
  return withSession(run, action === 'status' ? 'read' : 'write', undefined, ({ ctx }, out) => watchdog(ctx, out, action, opts), {
    local: true,
    cron: action === 'run',
  });
}

/** What the CLI prints for each action and the exit code. */
async function watchdog(ctx: Context, out: Output, action: WatchdogAction, opts: WatchdogFlags): Promise<number> {
  if (action === 'pause') {
    const pause = await writePause(ctx, opts.reason ?? '', opts.for ?? null);
    out.json(pause);
    out.line(`Watchdog paused${pause.until ? ` until ${localTime(pause.until)}` : ''}: it restarts nothing and \`health\` reports a down LeTTo as WARNING. End it with \`letto-update watchdog resume\`.`);
    return ExitCode.ok;
  }
  if (action === 'resume') {
    const was = await removePause(ctx);
    out.json({ resumed: was });
    out.line(was ? 'Watchdog resumed.' : 'The watchdog was not paused.');
    return ExitCode.ok;
  }
  if (action === 'status') {
    const counters = await readCounters(ctx);
    const pause = await readPause(ctx);
    out.json({ ...counters, pause, config: ctx.config.watchdog });
    out.line(`pause: ${pause ? describePause(pause) : 'none'}`);
    out.line(`failures in a row: ${counters.failures} of ${ctx.config.watchdog.failures}`);
    out.line(`last check: ${counters.lastCheck ? localTime(counters.lastCheck) : 'never'}${counters.lastAction ? ` (${counters.lastAction})` : ''}`);
    out.line(`last restart: ${counters.lastRestart ? localTime(counters.lastRestart) : 'never'}`);
    return ExitCode.ok;
  }
  // steps (stop, start, health) are collected with time stamps and printed with the check's line
  const show = (report: WatchdogReport): number => {
    if (report.action === 'restart-failed' || report.action === 'unknown') {
      out.flushLog();
      out.error(`watchdog: ${report.message}`, '');
      return ExitCode.failed;
    }
    if (report.action !== 'healthy' && report.action !== 'paused') out.flushLog(`watchdog: ${report.message}`);
    else out.flushLog();
    return ExitCode.ok;
  };
  if (opts.once) {
    const report = await watchdogOnce(ctx);
    out.json(report);
    return show(report);
  }
  const { interval, failures, grace } = ctx.config.watchdog;
  out.stopNote = 'the watchdog stopped.';
  out.criticalNote = 'finishing the restart in progress; then the watchdog stops.';
  out.line(`${stamp()} watchdog: checking ${adapterFor(ctx).health(ctx).url || 'the LeTTo containers'} every ${interval} s; restart after ${failures} failed checks in a row, not again within ${grace} s.`);
  await watchdogLoop(
    ctx,
    (report) => {
      out.json(report);
      show(report);
    },
    out.stopRequest.signal,
  );
  if (out.stopRequest.signal.aborted) {
    out.notice(`${String(out.stopRequest.signal.reason)} received earlier; the restart is done, the watchdog stopped.`);
    return 130; // as for a signal between checks (the unit lists 130 in SuccessExitStatus)
  }
  return ExitCode.ok;
}
