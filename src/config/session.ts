import { readFile, stat } from 'node:fs/promises';
import { DEFAULT_CONFIG_PATH, loadConfig, readPassword, type Config, type ConfigFlags } from './config.js';
import { systemClock, warPath, type Context, type LettoEvent, type Services } from '../context.js';
import { ConfigError, LettoError } from '../errors.js';
import { StateStore } from '../store/state.js';
import { createLazyHttpClient } from '../system/lazy-http.js';
import { createProcessRunner } from '../system/process.js';
import { findAccount, type Account } from '../system/users.js';

/** How a command is going to act on the machine: `read` only looks, `write` changes files or TomEE. */
export type Access = 'read' | 'write';

/** A ready context and a close function for the network client. */
export interface Session {
  ctx: Context;
  /** The config file read, or null when none was (the default path does not exist: defaults apply). */
  configSource: string | null;
  close(): Promise<void>;
}

/** What {@link openSession} needs to know about the command. */
export interface SessionOptions {
  configPath?: string;
  flags?: ConfigFlags;
  access: Access;
  /** Only this machine is contacted (health check, watchdog): the download password is not read. */
  local?: boolean;
  /**
   * The nightly run (`update --cron`) and the watchdog: the download server gets the configured patience
   * (`server.retries`, `retry_wait`, `retry_max_wait`, `connect_timeout`). Otherwise a person is waiting:
   * see {@link interactiveRetry} and `server.interactive_timeout`.
   */
  patient?: boolean;
  emit: (event: LettoEvent) => void;
  services?: Partial<Services>;
  env?: NodeJS.ProcessEnv;
}

/**
 * The retries of a command run by hand: at most 2, the first after at most 1 s, none more than 2 s
 * apart; together with `server.interactive_timeout` (15 s) the answer comes within seconds.
 */
export function interactiveRetry(config: Config): { retries: number; wait: number; maxWait: number } {
  const { retries, retry_wait, retry_max_wait } = config.server;
  return { retries: Math.min(retries, 2), wait: Math.min(retry_wait, 1), maxWait: Math.min(retry_max_wait, 2) };
}

/**
 * Builds the context of one command: config (defaults < file < environment < flags), password,
 * service user, network and process modules, state folder.
 *
 * @param access `write`: this process must be root or the service user (checked before anything happens).
 * @throws ConfigError (exit 2), LettoError (exit 1) for a wrong user.
 */
export async function openSession(opts: SessionOptions): Promise<Session> {
  const env = opts.env ?? process.env;
  const { config, source } = await loadConfig(opts.configPath, env, opts.flags);
  try {
    return await sessionFor(config, source, opts, env);
  } catch (error) {
    // a setting that is wrong for this machine may be a default the admin never chose: say so
    if (source === null && error instanceof LettoError) {
      error.message += ` (No config file was read: ${DEFAULT_CONFIG_PATH} does not exist, so every setting is its default; create it or name one with --config.)`;
    }
    throw error;
  }
}

async function sessionFor(config: Config, source: string | null, opts: SessionOptions, env: NodeJS.ProcessEnv): Promise<Session> {
  // `health` and the watchdog only talk to this machine: no download password needed (a monitoring user may not read it)
  const password = opts.local ? null : await readPassword(config, env);
  if (!opts.local && config.server.user && password === null) {
    throw new ConfigError(
      `server.user is "${config.server.user}" but no password is set.`,
      `Put it into ${config.server.password_file} (chmod 600) or set LETTO_UPDATE_PASSWORD.`,
    );
  }
  let extraCaPem: string | undefined;
  if (config.server.ca_file) {
    try {
      extraCaPem = await readFile(config.server.ca_file, 'utf8');
    } catch (error) {
      throw new ConfigError(`server.ca_file ${config.server.ca_file} cannot be read: ${(error as Error).message}.`, 'Point it at a PEM file or leave it empty.');
    }
  }
  const http =
    opts.services?.http ??
    createLazyHttpClient({
      serverUrl: config.server.url,
      credentials: config.server.user ? { user: config.server.user, password: password ?? '' } : null,
      ...(extraCaPem ? { extraCaPem } : {}),
      connectTimeout: config.server.connect_timeout,
      idleTimeout: config.server.idle_timeout,
      retry: opts.patient ? { retries: config.server.retries, wait: config.server.retry_wait, maxWait: config.server.retry_max_wait } : interactiveRetry(config),
      ...(opts.patient ? {} : { deadline: config.server.interactive_timeout }),
      onRetry: (message) => opts.emit({ type: 'warn', message }),
      allowPlainHttp: config.server.allow_plain_http,
      onWarning: (message) => opts.emit({ type: 'warn', message, standing: true }),
      env,
    });
  const services: Services = {
    http,
    processes: opts.services?.processes ?? createProcessRunner(),
    clock: opts.services?.clock ?? systemClock,
  };
  // a Docker install has no TomEE files: this process's user acts (root, or a member of the docker group)
  const serviceUser = config.docker ? await currentAccount() : await resolveServiceUser(config.tomee.user, warPath(config), config.tomee.webapps);
  if (opts.access === 'write' && !config.docker) assertMayAct(serviceUser);
  const ctx: Context = { config, services, emit: opts.emit, serviceUser, state: new StateStore(config.paths.state, serviceUser) };
  return { ctx, configSource: source, close: () => http.close() };
}

/** The account this process runs as. */
async function currentAccount(): Promise<Account> {
  const uid = process.getuid?.() ?? 0;
  return (await findAccount(uid)) ?? { name: String(uid), uid, gid: process.getgid?.() ?? 0, home: '/' };
}

/**
 * The service user: `tomee.user` if set, else the owner of the installed WAR, else the owner of webapps.
 * @throws ConfigError when the configured user does not exist or nothing can be found.
 */
export async function resolveServiceUser(configured: string, war: string, webapps: string): Promise<Account> {
  if (configured) {
    const account = await findAccount(configured);
    if (!account) throw new ConfigError(`tomee.user "${configured}" is not a user on this machine.`, 'Set tomee.user to the user TomEE runs as (usually letto).');
    return account;
  }
  for (const path of [war, webapps]) {
    const info = await stat(path).catch(() => null);
    if (!info) continue;
    return (await findAccount(info.uid)) ?? { name: String(info.uid), uid: info.uid, gid: info.gid, home: '/' };
  }
  throw new ConfigError(`Cannot tell which user runs TomEE: neither ${war} nor ${webapps} exists.`, 'Check tomee.webapps, or set tomee.user.');
}

/** Root may act (as the service user); the service user may act directly; anyone else may not. */
export function assertMayAct(serviceUser: Account): void {
  const uid = process.getuid?.();
  if (uid === undefined || uid === 0 || uid === serviceUser.uid) return;
  throw new LettoError(`letto-update runs as uid ${uid}, but TomEE's files belong to ${serviceUser.name} (uid ${serviceUser.uid}). Nothing was changed.`, {
    hint: `Run it as root or as ${serviceUser.name} (e.g. sudo -u ${serviceUser.name} letto-update …).`,
  });
}
