import type { Context } from '../context.js';
import type { Channel, Revision } from '../revision.js';
import type { FailedRevision, RunRecord } from '../store/state.js';
import { readPause, type WatchdogPause } from '../watchdog/state.js';
import { listBackups, type Backup } from '../war/backups.js';
import { readAvailable } from '../war/check.js';
import { adapterFor, kindOf, type Kind } from '../kinds/index.js';
import type { LocalRevision, RemoteRevision, ServiceRevision } from '../kinds/types.js';
import { orphanedScripts, type ScriptRecord } from '../store/script-groups.js';

/** `check --json` shape: revisions as numbers (installed null when unknown). */
export interface CheckReport {
  channel: Channel;
  installed: Revision | null;
  /** `war`, `state` (TomEE), `images` (Docker); null when unknown. */
  installedSource: string | null;
  available: Revision;
  updateAvailable: boolean;
}

/**
 * `check`: the installed revision and the available one of `server.channel` (`--channel` is merged
 * into the config as a flag). An update is available when the
 * available revision is newer, or the installed one is unknown. Changes nothing.
 * @throws DownloadError when the revision file cannot be read.
 */
export async function runCheck(ctx: Context): Promise<CheckReport> {
  const { channel } = ctx.config.server;
  const installed = await adapterFor(ctx).installed(ctx);
  const available = await readAvailable(ctx, channel);
  return {
    channel,
    installed: installed.revision,
    installedSource: installed.source,
    available,
    updateAvailable: installed.revision === null || available > installed.revision,
  };
}

/** `status` shape. `healthy` is null when TomEE is not running (no probe is made). */
export interface StatusReport {
  kind: Kind;
  installed: Revision | null;
  /** Docker: each LeTTo service's revision and state; `mixed` when their revisions differ. */
  services?: ServiceRevision[];
  mixed?: boolean;
  /** One line: `TomEE: running (PID 1234)`, or the containers' state. */
  runtime: string;
  running: boolean;
  pid: number | null;
  healthy: boolean | null;
  health: string;
  lastRun: RunRecord | null;
  /** A revision that failed its health check, which `update --cron` leaves alone (null: none). */
  failedRevision: FailedRevision | null;
  /** The watchdog's maintenance pause (null: none). */
  watchdogPause: WatchdogPause | null;
  /** A run that was killed and not yet recovered (one sentence), else null. */
  unfinished: string | null;
  /** TomEE scripts (stop, start, restart, status) that killed runs left running; `started` ISO 8601, `timeout` seconds. */
  orphanedScripts: Array<Pick<ScriptRecord, 'name' | 'command' | 'pgid' | 'started' | 'timeout'>>;
  /** LeTTo's databases: dumped before every update (and the newest dump kept), or that `[database]` is missing (docs/database.md). */
  database: string;
}

/** `status`: installed revision, whether TomEE (or the containers) runs, one health probe, the last run. */
export async function runStatus(ctx: Context): Promise<StatusReport> {
  const adapter = adapterFor(ctx);
  const installed = await adapter.installed(ctx);
  const status = await adapter.runtime(ctx);
  let healthy: boolean | null = null;
  let health = `not checked (${adapter.kind === 'tomee' ? 'TomEE is' : 'LeTTo\'s containers are'} not running)`;
  const targets = await adapter.healthTargets(ctx, installed);
  if (status.running && targets.length > 0) {
    // every school's URL of a Docker server with several schools, each named in the line
    const answers = await Promise.all(targets.map(async (target) => ({ target, probe: await ctx.services.http.probe(target.url, 10) })));
    healthy = answers.every(({ probe }) => probe.ok && probe.status === 200);
    health = answers
      .map(({ target, probe }) => `${target.school ? `school ${target.school}: ` : targets.length > 1 ? `${target.url}: ` : ''}${probe.ok ? `HTTP ${probe.status} in ${probe.ms} ms` : `no answer: ${probe.error}`}`)
      .join('; ');
  }
  const runs = await ctx.state.runs();
  // the journal's reader only for `status`, not for `check`
  const { describeJournal, unfinishedJournal } = await import('../store/journal.js');
  const journal = await unfinishedJournal(ctx, false);
  const failedRevision = (await ctx.state.read()).failedRevision ?? null;
  const watchdogPause = await readPause(ctx);
  const scripts = (await orphanedScripts(ctx)).map(({ name, command, pgid, started, timeout }) => ({ name, command, pgid, started, timeout }));
  const { describeDatabase } = await import('../database/plan.js');
  const database = await describeDatabase(ctx);
  if (status.running && targets.length === 0) {
    healthy = true;
    health = 'no health_url configured; the containers run';
  }
  return {
    kind: kindOf(ctx.config),
    installed: installed.revision,
    ...(installed.services ? { services: installed.services, mixed: Boolean(installed.mixed) } : {}),
    runtime: status.description,
    running: status.running,
    pid: status.pid,
    healthy,
    health,
    lastRun: runs.at(-1) ?? null,
    unfinished: journal ? describeJournal(journal) : null,
    orphanedScripts: scripts,
    failedRevision,
    watchdogPause,
    database,
  };
}

/**
 * `list` shape: what is kept locally (`local`: backup WARs, or a Docker install's revisions whose images
 * are here; `backups` keeps the WAR details for TomEE), and with `--remote` the archive's or the
 * registry's revisions (newest first).
 */
export interface ListReport {
  kind: Kind;
  installed: Revision | null;
  backups: Backup[];
  local: LocalRevision[];
  remote?: RemoteRevision[];
}

/** `list [--remote]`. @throws DownloadError for the remote listing. */
export async function runList(ctx: Context, remote: boolean): Promise<ListReport> {
  const adapter = adapterFor(ctx);
  const installed = await adapter.installed(ctx);
  const backups = adapter.kind === 'tomee' ? await listBackups(ctx) : [];
  const local = await adapter.listLocal(ctx);
  const base = { kind: adapter.kind, installed: installed.revision, backups, local };
  if (!remote) return base;
  return { ...base, remote: await adapter.listRemote(ctx) };
}
