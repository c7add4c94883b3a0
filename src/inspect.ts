import type { Context } from './context.js';
import type { ArchiveEntry } from './archive.js';
import type { Channel, Revision } from './revision.js';
import type { FailedRevision, RunRecord } from './state.js';
import { readPause, type WatchdogPause } from './watchdog-state.js';
import { listBackups, type Backup } from './steps/backup.js';
import { readAvailable, readInstalled, type Installed } from './steps/check.js';
import { readArchive } from './steps/download.js';
import { tomeeStatus } from './steps/tomee.js';
import { describeJournal, unfinishedJournal } from './recover.js';

/** `check --json` shape: revisions as numbers (installed null when unknown). */
export interface CheckReport {
  channel: Channel;
  installed: Revision | null;
  installedSource: Installed['source'];
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
  const installed = await readInstalled(ctx);
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
  installed: Revision | null;
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
}

/** `status`: installed revision, whether TomEE runs (status script), one health probe, the last run. */
export async function runStatus(ctx: Context): Promise<StatusReport> {
  const installed = await readInstalled(ctx);
  const status = await tomeeStatus(ctx);
  let healthy: boolean | null = null;
  let health = 'not checked (TomEE is not running)';
  if (status.running) {
    const probe = await ctx.services.http.probe(ctx.config.tomee.health_url, 10);
    healthy = probe.ok && probe.status === 200;
    health = probe.ok ? `HTTP ${probe.status} in ${probe.ms} ms` : `no answer: ${probe.error}`;
  }
  const runs = await ctx.state.runs();
  const journal = await unfinishedJournal(ctx, false);
  const failedRevision = (await ctx.state.read()).failedRevision ?? null;
  const watchdogPause = await readPause(ctx);
  return {
    installed: installed.revision,
    running: status.running,
    pid: status.pid,
    healthy,
    health,
    lastRun: runs.at(-1) ?? null,
    unfinished: journal ? describeJournal(journal) : null,
    failedRevision,
    watchdogPause,
  };
}

/** `list` shape: local backups, and with `--remote` the archive's revisions (newest first). */
export interface ListReport {
  installed: Revision | null;
  backups: Backup[];
  remote?: ArchiveEntry[];
}

/** `list [--remote]`. @throws DownloadError for the remote listing. */
export async function runList(ctx: Context, remote: boolean): Promise<ListReport> {
  const installed = await readInstalled(ctx);
  const backups = await listBackups(ctx);
  if (!remote) return { installed: installed.revision, backups };
  return { installed: installed.revision, backups, remote: await readArchive(ctx) };
}
