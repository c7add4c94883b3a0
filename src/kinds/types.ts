/**
 * The one interface behind which the two kinds of LeTTo install differ. Everything else — run lock,
 * backup lock, journal and its recovery, undo list, health-check policy, notifications, history, cron
 * mode, the watchdog — is written once and calls an {@link Adapter}:
 *
 * | step | TomEE (src/kinds/tomee/index.ts) | Docker (src/kinds/docker/index.ts) |
 * |---|---|---|
 * | installed revision | `revision.txt` in `webapps/letto.war` | the `revNNNN` tag of the images the running LeTTo containers use |
 * | fetch + verify | download the WAR into staging, check the zip | pull every LeTTo image of the revision, check each is there |
 * | keep the old one | copy the WAR to `paths.backups` | remember the running image ids in the journal; each keeps a revision tag (`rev<N>` as pulled, else one added, or `letto-update-previous`) |
 * | switch | stop TomEE, swap the WAR, start TomEE | point every LeTTo image tag the compose files name at the target, `up -d` each folder in order |
 * | undo | put the backup WAR back, start, health | point the tags back at the remembered ids, `up -d`, health |
 *
 * The adapters are collected in `adapters` (src/kinds/index.ts) `satisfies Record<Kind, Adapter>`.
 */
import type { Context } from '../context.js';
import type { TransferSummary } from '../war/delta/summary.js';
import type { Journal, JournalEntry } from '../store/journal.js';
import type { PlanStep } from './plan-checks.js';
import type { Revision, WarSource } from '../revision.js';
import type { LettoError } from '../errors.js';
import type { LogTail } from '../system/log-tail.js';

/** The kinds of LeTTo install: a `[docker]` section in the config makes it `docker`. */
export type Kind = 'tomee' | 'docker';

/** A fetched and verified revision, ready to install. Adapters add what they need (the WAR path, the pulled images). */
export interface Fetched {
  revision: Revision | null;
  /** SHA-256 (hex) of the WAR, where there is one. */
  sha256?: string;
  /** Where it is, for messages: the staged WAR's path, or the pulled image references. */
  where: string;
  /** What the download transferred (TomEE: full or delta download), for the report. */
  transfer?: TransferSummary;
}

/** Why a revision is fetched: for `update`/`download` from the channel or archive, or for `rollback` (kept copies first). */
export type FetchFor = { purpose: 'update'; source: WarSource } | { purpose: 'rollback' };

/** The installed revision; for Docker also each LeTTo service's own (`mixed` when they differ). */
export interface InstalledRevision {
  revision: Revision | null;
  /** Where it was read: `war`, `state`, `images`; null when unknown. */
  source: string | null;
  services?: ServiceRevision[];
  mixed?: boolean;
}

/** One LeTTo service of a Docker install, as `status` shows it. */
export interface ServiceRevision {
  /** `<compose project>/<service>` */
  name: string;
  /** Docker: the school it belongs to (its compose file `docker-compose-<school>.yml`), when it belongs to one. */
  school?: string;
  /** The image reference the compose file names, e.g. `lettohub/lettoserver:stable`. */
  image: string;
  revision: Revision | null;
  /** Container state (`running`, `exited`, …) and health (`healthy`, `unhealthy`, `starting`, or none). */
  state: string;
  health: string | null;
}

/** A URL the health check asks, and the school it belongs to (null: the whole install). */
export interface HealthTarget {
  url: string;
  school: string | null;
}

/** Is LeTTo running? `description` is one line for `status` (e.g. `TomEE: running (PID 1234)`). */
export interface Runtime {
  running: boolean;
  pid: number | null;
  description: string;
}

/** A revision kept on this machine (a backup WAR, or the images of a revision). */
export interface LocalRevision {
  revision: Revision;
  /** One line for `list`, e.g. `12.3 MiB  2026-01-01T…` or `3 images`. */
  description: string;
}

/** A revision the download server or registry offers. */
export interface RemoteRevision {
  revision: Revision;
  /** Where it comes from: the archive URL, or the image references. */
  url: string;
}

/**
 * What differs between a TomEE and a Docker install. Methods never print (they emit events on `ctx`)
 * and throw LettoError for expected failures, as the rest of the core does.
 */
export interface Adapter {
  readonly kind: Kind;
  /** Completes "… from revision A to B;" in plans, e.g. `TomEE will be restarted`. */
  readonly restartNote: string;
  /** The step message before {@link Adapter.beforeFetch} in `update`. */
  readonly beforeFetchNote: string;
  /** What {@link Adapter.restart} restarts, for messages: `TomEE`, `the LeTTo containers`. */
  readonly serverName: string;
  /** The watchdog's words after a restart: `TomEE was restarted and answers again` / `… but does not answer`. */
  readonly restarted: { ok: string; failed: string };
  /** What the watchdog tells after a restart that did not bring LeTTo back: where to look. */
  restartFailedHint(ctx: Context): string;
  /**
   * Imports every module the steps below need (they are imported lazily, so that `health` and `check`
   * start fast). Commands that may change the install call it first: a package upgrade that replaces
   * letto-update's files during a long run cannot take a module away from under it half-way.
   */
  load(): Promise<void>;
  /** The installed revision. @throws LettoError when the install cannot be read at all. */
  installed(ctx: Context): Promise<InstalledRevision>;
  /**
   * Checks before anything is fetched (free space, planted symlinks, …), then the journal's first step
   * (`download`) when a journal is given. @throws LettoError (exit 1); nothing was changed.
   */
  beforeFetch(ctx: Context, from: Revision | null, to: Revision, journal?: Journal): Promise<void>;
  /** Fetches and verifies `revision`; the running server is not touched. @throws LettoError (exit 1). */
  fetch(ctx: Context, revision: Revision, why: FetchFor): Promise<Fetched>;
  /**
   * Keeps the running revision, switches to `fetched`, checks health; on failure puts the kept one back
   * (undo list) and checks health again. Records each step in `journal` before doing it.
   * @returns the outcome (never throws for expected failures).
   */
  install(ctx: Context, from: Revision | null, fetched: Fetched, journal: Journal, options?: InstallOptions): Promise<InstallOutcome>;
  /** After `installed`: clean-up and retention (`paths.keep`), never removing a revision in `protect`. */
  conclude(ctx: Context, fetched: Fetched, protect: Array<Revision | null>): Promise<void>;
  /** Finishes or undoes what a killed run left (see docs/reliability.md). @throws LettoError (exit 4). */
  recover(ctx: Context, journal: JournalEntry): Promise<Recovery>;
  /** Is LeTTo running (status script, containers)? @throws LettoError when that cannot be told. */
  runtime(ctx: Context): Promise<Runtime>;
  /** Restarts LeTTo for the watchdog (the run lock and backup lock are the caller's). @throws LettoError. */
  restart(ctx: Context): Promise<void>;
  /** The URL and timeout (s) of the health check (`url` may be empty for Docker: containers only). */
  health(ctx: Context): { url: string; timeout: number };
  /**
   * The URLs `status` asks, each with the school it belongs to (null: the whole install): TomEE's
   * `health_url`; a Docker install's `health_url` list, a URL naming `{school}` once for each school
   * whose containers run (from `installed.services`). Empty: the containers' own health only.
   */
  healthTargets(ctx: Context, installed: InstalledRevision): Promise<HealthTarget[]>;
  /**
   * Waits until LeTTo answers its health check or the timeout passes (after a watchdog restart). When it
   * does not, a Docker install adds `log`: `docker logs` of the services that failed. Never throws.
   */
  waitHealthy(ctx: Context): Promise<HealthResult>;
  /** Revisions kept on this machine, newest first. */
  listLocal(ctx: Context): Promise<LocalRevision[]>;
  /** Revisions on the download server's archive or in the registry, newest first. @throws LettoError. */
  listRemote(ctx: Context): Promise<RemoteRevision[]>;
  /**
   * The checks of `update --dry-run` that depend on the kind (src/runbook/plan.ts makes the common ones: run
   * lock, backup lock, interrupted run, revisions), in runbook order. None of them changes anything.
   */
  planSteps(ctx: Context): Promise<PlanStep[]>;
}

/**
 * How installing a WAR ended:
 * - `installed`: the new revision runs and answered its health check (or TomEE was stopped before and left so);
 * - `failed`: it failed before the running server was touched; nothing changed (exit 1);
 * - `rolled-back`: it failed after TomEE was stopped; the previous revision runs healthy again (exit 3);
 * - `rollback-failed`: putting the previous revision back failed too; the server needs a person (exit 4).
 *
 * `log`: the log lines of what failed its health check, read before the undo (a Docker install's
 * `docker logs`; TomEE's catalina.out tail is read when the notice is sent). `database`: what the
 * rollback did with LeTTo's databases (`[database]`, src/database/steps.ts).
 */
export type InstallOutcome =
  | { result: 'installed'; started: boolean; message: string }
  | { result: 'failed'; error: LettoError }
  | { result: 'rolled-back' | 'rollback-failed'; error: LettoError; message: string; log?: LogTail; database?: DatabaseSummary };

/** Options of {@link Adapter.install}: `restoreDumps`, dumps to load after the dump of the current databases, before the swap (`rollback --restore-database`). */
export interface InstallOptions {
  restoreDumps?: JournalEntry['dumps'];
}

/** What an automatic rollback or a recovery did with LeTTo's databases: `restored` (at least one) from the dump, or `left alone`. */
export type DatabaseSummary = 'restored' | 'left alone';

/**
 * What recovering from an unfinished journal did: `completed` (the killed run had already installed
 * the new revision; only its clean-up was left), `undone` (the previous revision is in webapps again,
 * and TomEE runs and answers if it ran before), or `untouched` (the killed run had not changed webapps
 * or TomEE yet), or `adopted` (LeTTo was found running healthy on a complete WAR of a known revision — for
 * Docker: every LeTTo container healthy on the image its compose tag names, of one known revision —
 * e.g. repaired by hand after exit 4, and was left as it is). `running` is the revision in webapps
 * (Docker: in the containers) afterwards.
 */
export interface Recovery {
  kind: 'completed' | 'undone' | 'untouched' | 'adopted';
  journal: JournalEntry;
  running: Revision | null;
  message: string;
  /** What was done with LeTTo's databases (`[database]`): restored from the killed run's dumps, or left alone. */
  database?: DatabaseSummary;
}

/** Result of waiting for health: healthy or not, the last answer seen, and the seconds waited. */
export interface HealthResult {
  healthy: boolean;
  last: string;
  seconds: number;
  /**
   * When the check stopped before its time-out because something failed for good (a Docker container
   * that reported unhealthy or exited): what happened and after how long, e.g. `container X reported
   * unhealthy after 9 s`. Unset when the time-out passed (or for TomEE, which waits it out).
   */
  stopped?: string;
  /** When not healthy, where an adapter has them: the log lines of what failed (secrets taken out). */
  log?: LogTail;
}
