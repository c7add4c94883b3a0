import { localTime } from '../time.js';
import type { Context } from '../context.js';
import { LettoError, type PluginState } from '../errors.js';
import { runLockHolder } from '../store/lock.js';
import type { Revision } from '../revision.js';
import { adapterFor } from '../kinds/index.js';
import { readPause } from '../watchdog/state.js';


/** Thresholds of `health`, in seconds. */
export interface HealthThresholds {
  /** An answer slower than this is WARNING. */
  warning: number;
  /** An answer slower than this is CRITICAL (null: only the timeout). */
  critical: number | null;
  /** No answer within this is CRITICAL. */
  timeout: number;
}

/** What `health` found. `ms` is the time to the HTTP answer (null: no answer, or TomEE not running). */
export interface HealthReport {
  state: PluginState;
  /** One line after `LETTO <STATE> - `, e.g. `revision 6886, HTTP 200 in 35 ms`. */
  summary: string;
  revision: Revision | null;
  running: boolean | null;
  pid: number | null;
  httpStatus: number | null;
  ms: number | null;
  /** Performance data after `|`: `time=0.035s;5;;0;10`. */
  perfdata: string;
  /** Set when an update holds the run lock, or the watchdog is paused: a down LeTTo is then WARNING, not CRITICAL. */
  because?: string;
  /** What the admin should do (for stderr, never in the plugin line), e.g. why the status script and health_url disagree. */
  hint?: string;
}

/**
 * The plugin output: exactly one line, `LETTO <STATE> - <summary>[ | <perfdata>]` and a newline
 * (Monitoring Plugins Development Guidelines). Line breaks in `summary` become `; ` and a `|` (which
 * would start the perfdata) becomes `/`, so no message can break the line.
 */
export function pluginLine(state: PluginState, summary: string, perfdata = ''): string {
  const text = summary.trim().replace(/:?\s*\n\s*/g, (m) => (m.startsWith(':') ? ': ' : '; ')).replace(/\|/g, '/');
  return `LETTO ${state} - ${text}${perfdata ? ` | ${perfdata}` : ''}\n`;
}

/**
 * `health`: the status script (does TomEE run?) and one GET of `tomee.health_url`.
 * - OK: running, HTTP 200 within `warning` seconds;
 * - WARNING: HTTP 200 but slower than `warning`; or LeTTo down while an update holds the run lock or
 *   the watchdog is paused for maintenance (an expected outage);
 * - CRITICAL: TomEE not running, no answer within `timeout` (hanging), an HTTP status other than 200,
 *   or slower than `critical`;
 * - WARNING too: the status script says TomEE is not running but health_url answers HTTP 200 (the two
 *   disagree: usually a status script that cannot see TomEE's process as this user); `hint` says what to do;
 * - UNKNOWN: the status script cannot be run (the CLI also maps config and usage errors to UNKNOWN).
 * health_url is asked also when the status script says TomEE is not running.
 * Changes nothing; never throws for what it checks.
 */
export async function checkHealth(ctx: Context, t: HealthThresholds): Promise<HealthReport> {
  const adapter = adapterFor(ctx);
  const url = adapter.health(ctx).url;
  // the status script and the installed revision at once; the health page after both, so that its
  // time (perfdata) is the request alone and not the event loop's work for the other two
  const runtime = adapter.runtime(ctx).then((value) => ({ value }), (error: unknown) => ({ error }));
  const revision = await adapter.installed(ctx).then((i) => i.revision, () => null);
  const base = { revision, running: null, pid: null, httpStatus: null, ms: null, perfdata: '' };
  const outcome = await runtime;
  if ('error' in outcome) {
    if (!(outcome.error instanceof LettoError)) throw outcome.error;
    return { ...base, state: 'UNKNOWN', summary: outcome.error.message.replace(/\.$/, ''), hint: outcome.error.hint };
  }
  const status = outcome.value;
  const label = `revision ${revision ?? 'unknown'}`;
  const report = (state: PluginState, summary: string, extra: Partial<HealthReport> = {}): Promise<HealthReport> =>
    expectedOutage(ctx, { ...base, running: status.running, pid: status.pid, state, summary, ...extra });
  if (adapter.kind === 'docker') {
    if (!status.running) return report('CRITICAL', `${status.description}, ${label}`);
    if (!url) return report('OK', `${label}, ${status.description} (no docker.health_url to probe)`);
  }
  const probe = await ctx.services.http.probe(url, t.timeout);
  if (!status.running) {
    if (!probe.ok || probe.status !== 200) return report('CRITICAL', `TomEE is not running (${ctx.config.tomee.status}), ${label}`);
    // LeTTo answers although the status script says it is stopped: one of the two is wrong, and it is
    // usually the script, run as a user who cannot see TomEE's process
    return report('WARNING', `${label}, HTTP 200 in ${probe.ms} ms from ${url}, but the status script ${ctx.config.tomee.status} says TomEE is not running: the two disagree`, {
      httpStatus: probe.status,
      ms: probe.ms,
      perfdata: perfdata(probe.ms / 1000, t),
      hint: `LeTTo answers, so the status script is probably wrong for this user (uid ${process.getuid?.() ?? '?'}): a monitoring user often cannot see the processes of root or ${ctx.serviceUser.name} (e.g. a PID file it may not read, or /proc mounted with hidepid). Run \`letto-update health\` as root or ${ctx.serviceUser.name}, or fix ${ctx.config.tomee.status}; if health_url belongs to another server, fix tomee.health_url.`,
    });
  }
  if (!probe.ok) {
    const why = /abort|timeout/i.test(probe.error) ? `no answer within ${t.timeout} s` : probe.error;
    return report('CRITICAL', `${label}, ${url}: ${why}`, { perfdata: perfdata(null, t) });
  }
  const seconds = probe.ms / 1000;
  const extra = { httpStatus: probe.status, ms: probe.ms, perfdata: perfdata(seconds, t) };
  if (probe.status !== 200) return report('CRITICAL', `${label}, HTTP ${probe.status} from ${url}`, extra);
  if (t.critical !== null && seconds > t.critical) return report('CRITICAL', `${label}, HTTP 200 in ${probe.ms} ms (slower than ${t.critical} s)`, extra);
  if (seconds > t.warning) return report('WARNING', `${label}, HTTP 200 in ${probe.ms} ms (slower than ${t.warning} s)`, extra);
  return report('OK', `${label}, HTTP 200 in ${probe.ms} ms`, extra);
}

/** Check_http's perfdata: `time=<s>s;<warn>;<crit>;0;<timeout>` (empty value when there was no answer). */
function perfdata(seconds: number | null, t: HealthThresholds): string {
  return `time=${seconds === null ? '' : seconds.toFixed(3)}s;${t.warning};${t.critical ?? ''};0;${t.timeout}`;
}

/** A CRITICAL during an update or a maintenance pause is expected: WARNING, with the reason. */
async function expectedOutage(ctx: Context, report: HealthReport): Promise<HealthReport> {
  if (report.state !== 'CRITICAL') return report;
  const holder = await runLockHolder(ctx.state.dir);
  if (holder && stopsTomee(holder.command)) {
    return { ...report, state: 'WARNING', summary: `${report.summary}; ${holder.command === 'rollback' ? 'a rollback' : 'an update'} is running (since ${localTime(holder.started)})`, because: 'update' };
  }
  const pause = await readPause(ctx);
  if (pause) {
    return { ...report, state: 'WARNING', summary: `${report.summary}; watchdog paused for maintenance${pause.reason ? ` (${pause.reason})` : ''}`, because: 'maintenance' };
  }
  return report;
}

/** True for the run-lock holders that stop TomEE on purpose (update, rollback, recover), not for `download`. */
export function stopsTomee(command: string): boolean {
  return command === 'update' || command === 'rollback' || command === 'recover';
}
