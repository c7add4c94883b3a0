import { catalinaOut, type Context } from '../../context.js';
import { ScriptError } from '../../errors.js';
import { clearScript, recordScript, type ScriptName } from '../../store/script-groups.js';
import type { ScriptResult } from '../../system/process.js';

/** Seconds TomEE gets to be gone after the stop script returned. */
const STOP_WAIT = 120;

/**
 * Runs one TomEE script as the service user, in a process group of its own, recorded in the script
 * journal before it starts (src/store/script-groups.ts) and ended after `tomee.<name>_timeout` seconds.
 */
async function runTomeeScript(ctx: Context, name: Exclude<ScriptName, 'compose' | 'docker'>, command: string): Promise<ScriptResult> {
  const timeout = ctx.config.tomee[`${name}_timeout`];
  try {
    return await ctx.services.processes.runScript(command, ctx.serviceUser, timeout, { beforeStart: (group) => recordScript(ctx, name, group) });
  } finally {
    await clearScript(ctx);
  }
}

/** What the status script said: running (with its PID) or not. */
export interface TomeeStatus {
  running: boolean;
  pid: number | null;
}

/**
 * Runs `tomee.status` as the service user. Running means: exit 0 and a PID in the output
 * ({@link parseStatusPid}), as LeTTo's status.sh prints it (see DOMAIN.md); a script that ran and
 * printed no PID means "not running".
 * @throws ScriptError when the script could not be run, was killed or timed out: then nobody knows.
 */
export async function tomeeStatus(ctx: Context): Promise<TomeeStatus> {
  const result = await runTomeeScript(ctx, 'status', ctx.config.tomee.status);
  if (result.failure) {
    throw new ScriptError(`Cannot tell whether TomEE runs: the status script failed (${result.failure}).`, {
      hint: `Check tomee.status (${ctx.config.tomee.status}): it must exist, be executable by ${ctx.serviceUser.name}, and print the PID when TomEE runs.`,
    });
  }
  const pid = result.exitCode === 0 ? parseStatusPid(result.stdout) : null;
  return { running: pid !== null, pid };
}

/**
 * The PID in a status script's output (stdout text), or null when there is none. Accepted: a line that
 * is a number alone (`1234`), or `pid` followed by a number anywhere in a line (`PID: 1234`,
 * `LeTTo läuft mit PID 1234`, `tomee RUNNING pid 1234, uptime 0:20:40`). The exact wording of
 * LeTTo's status.sh is not documented, only that it prints the PID (see DOMAIN.md).
 */
export function parseStatusPid(stdout: string): number | null {
  for (const line of stdout.split(/\r?\n/)) {
    const match = /^\s*(\d+)\s*$/.exec(line) ?? /\bpid\b\s*[:=]?\s*(\d+)\b/i.exec(line);
    if (match && Number(match[1]) > 0) return Number(match[1]);
  }
  return null;
}

/**
 * Step "stop": runs `tomee.stop` as the service user, then waits (up to 120 s) until the status
 * script says TomEE is gone. A stop script that runs past `tomee.stop_timeout` is ended (its whole
 * process group) and the step fails at once, whatever TomEE's state: nothing is swapped under a
 * TomEE whose stop nobody saw through, and the caller's undo re-checks TomEE and starts it if needed.
 * @throws ScriptError when the script times out, or TomEE keeps running.
 */
export async function stopTomee(ctx: Context): Promise<void> {
  ctx.emit({ type: 'step', step: 'stop', message: `Stopping TomEE (${ctx.config.tomee.stop} as ${ctx.serviceUser.name})` });
  const result = await runTomeeScript(ctx, 'stop', ctx.config.tomee.stop);
  if (result.timedOut) {
    const status = await tomeeStatus(ctx);
    throw new ScriptError(`${result.failure ?? 'The stop script timed out'}. TomEE ${status.running ? `still runs (process ${status.pid})` : 'is stopped now'}; the WAR in webapps was not changed.`, {
      hint: `Look at ${ctx.config.tomee.stop} (why does it hang?) and ${catalinaOut(ctx.config)}; raise tomee.stop_timeout if TomEE needs longer to stop.`,
    });
  }
  if (result.failure || result.exitCode !== 0) {
    ctx.emit({ type: 'warn', message: `${ctx.config.tomee.stop}: ${result.failure ?? `exit code ${result.exitCode}`} ${lastLine(result.stderr || result.stdout)}`.trim() });
  }
  const deadline = ctx.services.clock.now().getTime() + STOP_WAIT * 1000;
  for (;;) {
    const status = await tomeeStatus(ctx);
    if (!status.running) return;
    if (ctx.services.clock.now().getTime() >= deadline) {
      throw new ScriptError(`TomEE did not stop within ${STOP_WAIT} s (process ${status.pid} still runs).`, {
        hint: `Look at ${ctx.config.tomee.stop} and ${catalinaOut(ctx.config)}; stop TomEE by hand, then run again.`,
      });
    }
    await ctx.services.clock.sleep(1);
  }
}

/**
 * Step "start": runs `tomee.start` as the service user (it returns once TomEE is launching). A start
 * script that runs past `tomee.start_timeout` is ended with its process group (a TomEE it launched in
 * that group goes with it) and the step fails.
 * @throws ScriptError when the script exits non-zero or times out.
 */
export async function startTomee(ctx: Context): Promise<void> {
  ctx.emit({ type: 'step', step: 'start', message: `Starting TomEE (${ctx.config.tomee.start} as ${ctx.serviceUser.name})` });
  const result = await runTomeeScript(ctx, 'start', ctx.config.tomee.start);
  if (result.failure || result.exitCode !== 0) {
    throw new ScriptError(`${ctx.config.tomee.start} failed: ${result.failure ?? `exit code ${result.exitCode}`} ${lastLine(result.stderr || result.stdout)}`.trim(), {
      hint: `Look at the start script and ${catalinaOut(ctx.config)}.`,
    });
  }
}

/**
 * Restart (the watchdog's): `tomee.restart` as the service user when it is set (LeTTo's restart.sh),
 * else {@link stopTomee} (if the status script says it runs) and {@link startTomee}.
 * @throws ScriptError when a script fails or TomEE does not stop.
 */
export async function restartTomee(ctx: Context): Promise<void> {
  const script = ctx.config.tomee.restart;
  if (!script) {
    if ((await tomeeStatus(ctx)).running) await stopTomee(ctx);
    await startTomee(ctx);
    return;
  }
  ctx.emit({ type: 'step', step: 'start', message: `Restarting TomEE (${script} as ${ctx.serviceUser.name})` });
  const result = await runTomeeScript(ctx, 'restart', script);
  if (result.failure || result.exitCode !== 0) {
    throw new ScriptError(`${script} failed: ${result.failure ?? `exit code ${result.exitCode}`} ${lastLine(result.stderr || result.stdout)}`.trim(), {
      hint: `Look at the restart script and ${catalinaOut(ctx.config)}.`,
    });
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}
