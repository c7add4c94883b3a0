/**
 * `letto-update metrics`: what a fleet's monitoring needs of one server, as Prometheus metrics
 * (src/report/exposition.ts renders them). Everything is read from this machine — the installed
 * revision (the adapter), `state.json` and `runs.jsonl` (src/store/state.ts), `watchdog.json` and the
 * pause file (src/watchdog/state.ts) — so that `metrics` makes no network call and starts as fast as
 * `check`. The channel's revision is the one the last `update` run read (`runs.jsonl` `available`),
 * with the time it was read; only `--probe` asks LeTTo itself (the health check).
 * Names and labels are listed in docs/operations.md ("Prometheus and Grafana").
 */
import type { Context } from '../context.js';
import { adapterFor, kindOf } from '../kinds/index.js';
import type { InstalledRevision } from '../kinds/types.js';
import type { RunRecord, RunResult } from '../store/state.js';
import { version } from '../version.js';
import { readCounters, readPause, type WatchdogCounters } from '../watchdog/state.js';
import type { Family, Sample } from './exposition.js';

/** Every result a run of update, rollback or recover can end with: one series each, 1 for the last run's. */
export const RUN_RESULTS = ['updated', 'current', 'skipped', 'failed', 'rolled-back', 'rollback-failed', 'busy', 'recovered'] as const satisfies readonly RunResult[];
/** Every watchdog check outcome (src/watchdog/watchdog.ts WatchdogAction). */
export const WATCHDOG_ACTIONS = ['healthy', 'paused', 'update-running', 'unknown', 'grace', 'counting', 'backup-running', 'restarted', 'restart-failed'] as const;
/** Results that count as a success for `letto_update_last_success_timestamp_seconds`. */
const SUCCESS = new Set<string>(['updated', 'current', 'skipped', 'recovered']);

/** What {@link collectMetrics} read: the inputs of {@link metricFamilies}, kept apart so tests can build them. */
export interface MetricsInput {
  kind: 'tomee' | 'docker';
  channel: string;
  version: string;
  installed: InstalledRevision | null;
  runs: RunRecord[];
  failedRevision: number | null;
  watchdog: WatchdogCounters;
  watchdogPaused: boolean;
  /** Only with `--probe`: did LeTTo answer its health check with HTTP 200, and how long it took (seconds, null: no answer). */
  probe?: { up: boolean; seconds: number | null };
  /** When the metrics were made (the textfile's age can be told from it). */
  now: Date;
}

/**
 * Reads everything {@link metricFamilies} needs from this machine. Never throws for an install it cannot
 * read (the installed revision is then left out); `probe` runs the health check (src/report/health-check.ts).
 */
export async function collectMetrics(ctx: Context, options: { probe?: boolean } = {}): Promise<MetricsInput> {
  const installed = await adapterFor(ctx).installed(ctx).catch(() => null);
  const input: MetricsInput = {
    kind: kindOf(ctx.config),
    channel: ctx.config.server.channel,
    version,
    installed,
    runs: await ctx.state.runs(),
    failedRevision: (await ctx.state.read()).failedRevision?.revision ?? null,
    watchdog: await readCounters(ctx),
    watchdogPaused: (await readPause(ctx)) !== null,
    now: ctx.services.clock.now(),
  };
  if (options.probe) {
    const { checkHealth } = await import('./health-check.js');
    const health = await checkHealth(ctx, { warning: 5, critical: null, timeout: 10 });
    input.probe = { up: health.httpStatus === 200, seconds: health.ms === null ? null : health.ms / 1000 };
  }
  return input;
}

const seconds = (iso: string) => Date.parse(iso) / 1000;
/** When a recorded run ended (its `time`), in Unix seconds; null for no run. */
const endOf = (run: RunRecord | undefined) => (run ? seconds(run.time) : null);
const one = (value: number | null | undefined, labels: Record<string, string> = {}): Sample[] => (value === null || value === undefined || Number.isNaN(value) ? [] : [{ labels, value }]);
const gauge = (name: string, help: string, samples: Sample[]): Family => ({ name, help, type: 'gauge', samples });
const counter = (name: string, help: string, samples: Sample[]): Family => ({ name, help, type: 'counter', samples });

/**
 * The metric families of one server (see docs/operations.md for each name). Times are Unix seconds
 * (`_timestamp_seconds`), durations seconds, sizes bytes; a value that is not known is left out rather
 * than written as 0, except `letto_update_failed_revision` (0: none).
 */
export function metricFamilies(input: MetricsInput): Family[] {
  const runs = input.runs.filter((r) => r.command !== 'watchdog');
  const last = runs.at(-1);
  const channelRead = runs.findLast((r) => r.command === 'update' && r.available != null && (r.channel ?? input.channel) === input.channel);
  const installed = input.installed?.revision ?? null;
  const available = channelRead?.available ?? null;
  const download = runs.findLast((r) => r.download !== undefined)?.download;
  const downtime = runs.findLast((r) => r.downtimeSeconds !== undefined && (r.command === 'update' || r.command === 'rollback'));
  const restarts = input.runs.filter((r) => r.command === 'watchdog');
  const families: Family[] = [
    gauge('letto_update_info', 'letto-update on this server: kind of install (tomee, docker), channel followed, letto-update version.', [
      { labels: { kind: input.kind, channel: input.channel, version: input.version }, value: 1 },
    ]),
    gauge('letto_update_installed_revision', 'The LeTTo revision installed (left out when it cannot be read).', one(installed)),
    gauge('letto_update_available_revision', 'The revision the channel offered when the last update run read it.', one(available, { channel: input.channel })),
    gauge('letto_update_available_revision_read_timestamp_seconds', 'When the last update run read the channel revision (Unix time).', one(endOf(channelRead))),
    gauge('letto_update_revisions_behind', 'Channel revision minus installed revision (0 when current or newer).', one(installed !== null && available !== null ? Math.max(0, available - installed) : null)),
    gauge('letto_update_last_run_start_timestamp_seconds', 'When the last update, rollback or recovery started (Unix time).', one(last && seconds(last.time) - last.durationSeconds)),
    gauge('letto_update_last_run_end_timestamp_seconds', 'When the last update, rollback or recovery ended (Unix time).', one(endOf(last))),
    gauge('letto_update_last_run_duration_seconds', 'How long the last update, rollback or recovery took.', one(last?.durationSeconds)),
    gauge('letto_update_last_run_result', 'How the last update, rollback or recovery ended: 1 for its result, 0 for the others.', last ? RUN_RESULTS.map((result) => ({ labels: { command: last.command, result }, value: last.result === result ? 1 : 0 })) : []),
    gauge('letto_update_last_nightly_run_timestamp_seconds', 'When the last nightly run (update --cron) ended, whatever its result (Unix time).', one(endOf(runs.findLast((r) => r.cron === true)))),
    gauge('letto_update_last_success_timestamp_seconds', 'When the last run ended well: updated, already current, skipped or recovered (Unix time).', one(endOf(runs.findLast((r) => SUCCESS.has(r.result))))),
    gauge('letto_update_last_update_timestamp_seconds', 'When a revision was last installed by an update or rollback that answered its health check (Unix time).', one(endOf(runs.findLast((r) => r.result === 'updated')))),
    gauge('letto_update_last_update_downtime_seconds', 'How long LeTTo was down in the last update or rollback that stopped it: from the stop until it answered again (or the rollback ended).', one(downtime?.downtimeSeconds)),
    gauge('letto_update_last_download_fetched_bytes', 'Bytes the last WAR download fetched from the server.', one(download?.fetched)),
    gauge('letto_update_last_download_reused_bytes', 'Bytes the last WAR download took from WARs already here (delta download).', one(download?.reused)),
    gauge('letto_update_last_download_size_bytes', 'Size of the WAR the last download produced.', one(download?.total)),
    counter('letto_update_download_fetched_bytes_total', 'Bytes fetched by every recorded WAR download.', one(runs.reduce((sum, r) => sum + (r.download?.fetched ?? 0), 0))),
    counter('letto_update_download_reused_bytes_total', 'Bytes reused from local WARs by every recorded WAR download (not downloaded).', one(runs.reduce((sum, r) => sum + (r.download?.reused ?? 0), 0))),
    gauge('letto_update_failed_revision', 'The revision that failed its health check and was rolled back, which the nightly run skips (0: none).', one(input.failedRevision ?? 0)),
    counter('letto_update_runs_total', 'Recorded runs of update, rollback and recovery, by command and result.', countBy(runs, (r) => ({ command: r.command, result: r.result }))),
    counter('letto_update_watchdog_restarts_total', 'Watchdog restarts of LeTTo, by result: restarted (answers again) or restart-failed.', ['restarted', 'restart-failed'].map((result) => ({ labels: { result }, value: restarts.filter((r) => r.result === result).length }))),
    gauge('letto_update_watchdog_last_restart_timestamp_seconds', 'When the watchdog last restarted LeTTo (Unix time).', one(input.watchdog.lastRestart ? seconds(input.watchdog.lastRestart) : null)),
    gauge('letto_update_watchdog_last_check_timestamp_seconds', 'When the watchdog last checked LeTTo (Unix time).', one(input.watchdog.lastCheck ? seconds(input.watchdog.lastCheck) : null)),
    gauge('letto_update_watchdog_last_action', "What the watchdog's last check decided: 1 for its action, 0 for the others.", input.watchdog.lastAction ? WATCHDOG_ACTIONS.map((action) => ({ labels: { action }, value: input.watchdog.lastAction === action ? 1 : 0 })) : []),
    gauge('letto_update_watchdog_paused', 'Whether the watchdog is paused for maintenance (1) or not (0).', one(input.watchdogPaused ? 1 : 0)),
    ...serviceFamilies(input.installed),
    gauge('letto_update_up', 'Whether LeTTo answered its health check with HTTP 200 (only with metrics --probe).', one(input.probe ? (input.probe.up ? 1 : 0) : null)),
    gauge('letto_update_health_check_duration_seconds', 'How long the health check took to answer (only with metrics --probe).', one(input.probe?.seconds)),
    gauge('letto_update_metrics_timestamp_seconds', 'When these metrics were made (Unix time).', one(input.now.getTime() / 1000)),
  ];
  return families;
}

/** A Docker install: each LeTTo service's revision and whether it runs healthy, labelled `project` and `service` (`<project>/<service>`). */
function serviceFamilies(installed: InstalledRevision | null): Family[] {
  const services = installed?.services ?? [];
  const labels = (name: string) => ({ project: name.includes('/') ? name.slice(0, name.indexOf('/')) : '', service: name });
  return [
    gauge('letto_update_service_revision', 'Docker: the revision each LeTTo service runs.', services.flatMap((s) => one(s.revision, labels(s.name)))),
    gauge('letto_update_service_up', 'Docker: whether each LeTTo service runs and is not unhealthy or still starting (1) or not (0).', services.map((s) => ({ labels: labels(s.name), value: s.state === 'running' && (s.health === null || s.health === 'healthy') ? 1 : 0 }))),
    gauge('letto_update_services_mixed', 'Docker: whether the LeTTo services run different revisions (1) or one (0).', installed?.services ? [{ labels: {}, value: installed.mixed ? 1 : 0 }] : []),
  ];
}

/** One counter sample per distinct label set of `runs`. */
function countBy(runs: RunRecord[], labelsOf: (r: RunRecord) => Record<string, string>): Sample[] {
  const counts = new Map<string, Sample>();
  for (const run of runs) {
    const labels = labelsOf(run);
    const key = JSON.stringify(labels);
    const sample = counts.get(key) ?? { labels, value: 0 };
    sample.value++;
    counts.set(key, sample);
  }
  return [...counts.values()];
}
