import { dirname, join } from 'node:path';
import type { Config } from './config/config.js';
import type { TransferSummary } from './war/delta/summary.js';
import type { Revision } from './revision.js';
import type { StateStore } from './store/state.js';
import type { DownloadProgress, HttpClient } from './system/http.js';
import type { ProcessRunner } from './system/process.js';
import type { Account } from './system/users.js';

/** The steps of the runbook, in the order an update runs them. */
export type StepName =
  | 'check'
  | 'download'
  | 'verify'
  | 'backup'
  | 'stop'
  | 'swap'
  | 'start'
  | 'health'
  | 'rollback'
  | 'recover';

/** What the core reports while it works; only the CLI turns these into output. */
export type LettoEvent =
  | { type: 'step'; step: StepName; message: string }
  /**
   * A warning. `standing`: about a setting the admin chose (e.g. plain http allowed), the same every run;
   * shown like any warning, but it does not by itself make a quiet `update --cron` run print.
   */
  | { type: 'warn'; message: string; standing?: boolean }
  /** Something the admin must see even with --quiet or --json (stderr), e.g. a recovered interrupted run. */
  | { type: 'notice'; message: string }
  | { type: 'progress'; progress: DownloadProgress }
  | { type: 'progress-done' }
  /** Between stopping TomEE and the end of its health check (or of the rollback): must not be interrupted. */
  | { type: 'critical'; active: boolean };

/** Waiting and time, behind one seam so tests can make them instant. Units: seconds. */
export interface Clock {
  now(): Date;
  sleep(seconds: number): Promise<void>;
}

/** The side effects a step may use: network, child processes, time. */
export interface Services {
  http: HttpClient;
  processes: ProcessRunner;
  clock: Clock;
}

/** The one object every step takes: config, side effects, service user, state and the event sink. */
export interface Context {
  config: Config;
  services: Services;
  /** The account TomEE runs as: scripts run as it, files in webapps/staging/backups belong to it. */
  serviceUser: Account;
  state: StateStore;
  emit(event: LettoEvent): void;
}

/** The installed WAR: `<tomee.webapps>/<tomee.war_name>`. */
export function warPath(config: Config): string {
  return join(config.tomee.webapps, config.tomee.war_name);
}

/** TomEE's `catalina.out` beside webapps: `<webapps>/../logs/catalina.out`. */
export function catalinaOut(config: Config): string {
  return join(dirname(config.tomee.webapps), 'logs', 'catalina.out');
}

/** A staged or backed-up WAR ready to be installed, with its revision (null: unknown). */
export interface WarFile {
  path: string;
  revision: Revision | null;
  sha256?: string;
  /** What downloading it fetched (absent for a WAR that was not downloaded by this run). */
  transfer?: TransferSummary;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000)),
};
