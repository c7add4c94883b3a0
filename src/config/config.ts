import { readFile, stat } from 'node:fs/promises';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { DURATION_FORMS, parseDuration } from './duration.js';
import { ConfigError } from '../errors.js';

/** Where the config is read from when neither `--config` nor `LETTO_UPDATE_CONFIG` names a file. */
export const DEFAULT_CONFIG_PATH = '/etc/letto-update/config.toml';

const channel = z.enum(['stable', 'daily'], {
  errorMap: () => ({ message: 'must be "stable" or "daily"' }),
});
const path = z.string().min(1, 'must not be empty');
/** A string that {@link parseDuration} reads becomes its seconds; anything else is left for the number check to refuse. */
const asDuration = (value: unknown): unknown => (typeof value === 'string' ? (parseDuration(value) ?? value) : value);
const durationNumber = () => z.number({ invalid_type_error: `must be ${DURATION_FORMS}` });
/** Whole seconds, written as a number (`300`) or a duration (`"5m"`). */
const seconds = z.preprocess(asDuration, durationNumber().int('must be a whole number of seconds').positive('must be greater than 0'));
/** Seconds that may have a fraction (`0.5`, `"500ms"`), for network timeouts and retry waits. */
const duration = z.preprocess(asDuration, durationNumber().positive('must be greater than 0 seconds'));

/** A list of strings; a single string (or an environment variable) may list them separated by commas or spaces. */
const stringList = z.preprocess(
  (value) => (typeof value === 'string' ? value.split(/[\s,;]+/).filter(Boolean) : value),
  z.array(z.string().min(1, 'must not be empty')),
);

/** `[notify]`: who is told about updates, failed updates, rollbacks and watchdog restarts (see src/report/notify.ts). */
const notifySchema = z
  .object({
    email_to: stringList.default([]),
    email_from: z.string().default(''),
    smtp_url: z
      .string()
      .refine((url) => url === '' || /^smtps?:\/\/[^/]+/.test(url), 'must be empty (local sendmail) or a URL like smtp://mail.example.org:587 or smtps://mail.example.org')
      .default(''),
    smtp_user: z.string().default(''),
    smtp_password_file: z.string().default(''),
    sendmail: path.default('/usr/sbin/sendmail'),
    webhook_url: z
      .string()
      .refine((url) => url === '' || /^https?:\/\/[^/]+/.test(url), 'must be empty or an http(s) URL')
      .default(''),
    when: z.enum(['change', 'error', 'always'], { errorMap: () => ({ message: 'must be "change", "error" or "always"' }) }).default('change'),
  })
  .strict();

/** `[watchdog]`: seconds between checks, failed checks in a row before a restart, seconds after a restart without checks counting. */
const watchdogSchema = z
  .object({
    interval: seconds.default(60),
    failures: z.number().int('must be a whole number').min(1, 'must be at least 1').default(3),
    grace: seconds.default(300),
  })
  .strict();

/**
 * `[docker]`: a Docker install (LeTTo's images, brought up by compose). Its presence makes the install
 * a Docker one (see src/kinds/); without it, a TomEE install.
 */
const dockerSchema = z
  .object({
    compose_dirs: z.preprocess(
      (value) => (typeof value === 'string' ? value.split(/[\s,;]+/).filter(Boolean) : value),
      z.array(path, { invalid_type_error: 'must be a list of folders like ["/opt/letto/docker/compose/letto"]' }).min(1, 'must name at least one compose folder'),
    ),
    image_prefix: z.string().min(1, 'must not be empty (e.g. "lettohub/")').default('lettohub/'),
    registry: z
      .string()
      .regex(/^$|^[A-Za-z0-9.-]+(:\d+)?$/, 'must be empty (Docker Hub) or a registry host like "localhost:5000", without https:// or a path')
      .default(''),
    revision_tag: z.string().regex(/^[A-Za-z0-9_.-]*\{revision\}[A-Za-z0-9_.-]*$/, 'must be a tag containing {revision}, like "rev{revision}"').default('rev{revision}'),
    health_url: z.string().url('must be a URL like https://localhost/letto/test.jsf').or(z.literal('')).default('https://localhost/letto/test.jsf'),
    health_timeout: seconds.default(300),
    compose: z.string().default(''),
    command: path.default('docker'),
  })
  .strict();

/**
 * `[database]`: LeTTo's MySQL/MariaDB databases, dumped before every update and restored when an automatic
 * rollback needs it (src/database/, docs/database.md). Without it, no dump is made.
 */
const databaseSchema = z
  .object({
    databases: stringList.pipe(z.array(z.string().regex(/^[A-Za-z0-9_$-]+\*?$/, 'must be database names like "letto" (Docker: "letto_*" for every school)')).min(1, 'must name at least one database')).default(['letto']),
    socket: z.string().default(''),
    user: z.string().default('root'),
    option_file: z.string().default(''),
    dump_command: z.string().default(''),
    client_command: z.string().default(''),
    container: z.string().default('letto-mysql'),
    timeout: seconds.default(3600),
  })
  .strict();

/**
 * The one schema of the config file: types, defaults (a standard LeTTo install) and messages.
 * Every section and key is documented in docs/configuration.md.
 */
export const configSchema = z
  .object({
    server: z
      .object({
        url: z.string().url('must be a URL like https://letto.at/download/letto/').default('https://letto.at/download/letto/'),
        user: z.string().default(''),
        password_file: z.string().default('/etc/letto-update/password'),
        channel: channel.default('stable'),
        ca_file: z.string().default(''),
        retries: z.number().int('must be a whole number').min(0, 'must be 0 or more').max(100, 'must be at most 100').default(5),
        retry_wait: duration.default(2),
        retry_max_wait: duration.default(60),
        connect_timeout: duration.default(30),
        idle_timeout: duration.default(60),
        interactive_timeout: duration.default(15),
        allow_plain_http: z.boolean({ invalid_type_error: 'must be true or false' }).default(false),
        delta: z.boolean({ invalid_type_error: 'must be true or false' }).default(true),
      })
      .strict()
      .default({}),
    tomee: z
      .object({
        webapps: path.default('/opt/tomee/webapps'),
        war_name: z
          .string()
          .regex(/^[^/]+\.war$/, 'must be a file name ending in .war, without a folder')
          .default('letto.war'),
        user: z.string().default(''),
        start: path.default('/opt/letto/start.sh'),
        stop: path.default('/opt/letto/stop.sh'),
        status: path.default('/opt/letto/status.sh'),
        health_url: z.string().url('must be a URL like https://localhost/letto/test.jsf').default('https://localhost/letto/test.jsf'),
        health_timeout: seconds.default(300),
        restart: z.string().default(''),
        status_timeout: seconds.default(30),
        stop_timeout: seconds.default(180),
        start_timeout: seconds.default(180),
        restart_timeout: seconds.default(360),
      })
      .strict()
      .default({}),
    paths: z
      .object({
        staging: path.default('/opt/letto/war'),
        backups: path.default('/opt/letto/backup/war'),
        keep: z.number().int('must be a whole number').min(1, 'must be at least 1').default(5),
        state: path.default('/var/lib/letto-update'),
        backup_lock: path.default('/sicherung/sqlsicherungaktiv'),
        free_space_margin: z.number().int('must be a whole number of MiB').min(0, 'must be 0 or more').default(100),
      })
      .strict()
      .default({}),
    notify: notifySchema.default({}),
    watchdog: watchdogSchema.default({}),
    docker: dockerSchema.optional(),
    database: databaseSchema.optional(),
  })
  .strict();

/** The validated config: every key present, defaults filled in. */
export type Config = z.infer<typeof configSchema>;
/** The validated `[database]` section. */
export type DatabaseConfig = z.infer<typeof databaseSchema>;
/** The validated `[docker]` section. */
export type DockerConfig = z.infer<typeof dockerSchema>;
/** Values given on the command line; they win over file and environment. */
export interface ConfigFlags {
  channel?: 'stable' | 'daily';
}

/** A loaded config plus where it came from (for messages). */
export interface LoadedConfig {
  config: Config;
  /** The file read, or null when the default path did not exist and defaults were used. */
  source: string | null;
}

/**
 * Where the settings came from, for people: `/etc/letto-update/config.toml`, or, when no file was read,
 * `none (/etc/letto-update/config.toml does not exist; every setting is its default)`.
 */
export function describeConfigSource(source: string | null): string {
  return source ?? `none (${DEFAULT_CONFIG_PATH} does not exist; every setting is its default)`;
}

/**
 * `LETTO_UPDATE_*` variables that are not config keys. Any other `LETTO_UPDATE_*` variable that names no
 * key is refused, like an unknown key in the file (a mistyped variable must not be ignored silently).
 */
export const OTHER_VARIABLES: ReadonlySet<string> = new Set([
  'LETTO_UPDATE_CONFIG',
  'LETTO_UPDATE_PASSWORD',
  'LETTO_UPDATE_SMTP_PASSWORD',
  /** test hook, see src/system/fault.ts */
  'LETTO_UPDATE_FAULT',
]);

/** One thing wrong with the configuration: where (file line or environment variable), what, and the fix. */
interface Problem {
  /** `line 3` / `environment variable LETTO_UPDATE_…` / null (the file, no line known). */
  at: string | null;
  /** e.g. `key tomee.health_timeout must be greater than 0` (no final period). */
  text: string;
  hint: string;
}

/**
 * Loads the config: defaults < file < environment < flags.
 *
 * File: TOML at `path` (from `--config`), else `env.LETTO_UPDATE_CONFIG`, else {@link DEFAULT_CONFIG_PATH}
 * (which may be missing: then the defaults apply). Environment: `LETTO_UPDATE_<SECTION>_<KEY>`, e.g.
 * `LETTO_UPDATE_SERVER_CHANNEL=daily`, `LETTO_UPDATE_TOMEE_HEALTH_TIMEOUT=5m`. Durations are read by
 * {@link parseDuration} wherever they come from.
 *
 * @throws ConfigError (exit 2) naming the file, the line or key, and the fix; with several problems
 * (wrong values, unknown keys, unknown `LETTO_UPDATE_*` variables) all of them in one message, one per line.
 */
export async function loadConfig(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  flags: ConfigFlags = {},
): Promise<LoadedConfig> {
  const explicit = path ?? env.LETTO_UPDATE_CONFIG;
  const file = explicit ?? DEFAULT_CONFIG_PATH;
  let raw: Record<string, unknown> = {};
  let source: string | null = file;
  let text: string | null = null;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && explicit === undefined) source = null;
    else throw unreadableConfig(file, error as NodeJS.ErrnoException);
  }
  if (text !== null) {
    try {
      raw = parseToml(text) as Record<string, unknown>;
    } catch (error) {
      if (error instanceof TomlError) {
        throw new ConfigError(
          `Config file ${file}, line ${error.line}, column ${error.column}: not valid TOML (${firstLine(error.message)}).`,
          'Fix the TOML syntax at that line: strings need double quotes, sections look like [server].',
        );
      }
      throw error;
    }
  }
  const { applied: fromEnv, problems } = applyEnvironment(raw, env);
  if (flags.channel) section(raw, 'server').channel = flags.channel;
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(...describeIssue(issue, text, fromEnv));
  }
  if (parsed.success) {
    const urlVariable = fromEnv.get('server.url');
    const line = text === null ? null : lineOfKey(text, ['server', 'url']);
    const wrongUrl = checkUrlScheme(parsed.data.server.url, parsed.data.server.allow_plain_http, urlVariable ? `environment variable ${urlVariable}` : line === null ? null : `line ${line}`);
    if (wrongUrl) problems.push(wrongUrl);
  }
  if (problems.length > 0 || !parsed.success) throw configProblems(source ? `Config file ${source}` : 'Configuration', problems);
  const config = parsed.data;
  return { config, source };
}

/** The error for a config file that exists but cannot be read (or a named one that does not exist). */
function unreadableConfig(file: string, error: NodeJS.ErrnoException): ConfigError {
  switch (error.code) {
    case 'ENOENT':
      return new ConfigError(`Cannot read config file ${file}: it does not exist.`, 'Create it (see docs/configuration.md) or name another file with --config.');
    case 'EACCES':
    case 'EPERM':
      return new ConfigError(
        `Cannot read config file ${file}: permission denied for ${describeUser()}.`,
        `Run letto-update as a user who may read it (root, or the user of the nightly run), or give that user read access (e.g. chgrp and chmod 640 ${file}).`,
      );
    case 'EISDIR':
      return new ConfigError(`Cannot read config file ${file}: it is a folder.`, 'Name the TOML file itself with --config (e.g. /etc/letto-update/config.toml).');
    default:
      return new ConfigError(`Cannot read config file ${file}: ${error.message}.`, 'Check the file and the disk it is on, then run again.');
  }
}

function describeUser(): string {
  const uid = process.getuid?.();
  return uid === undefined ? 'this user' : `uid ${uid}`;
}

/** Turns one zod issue into problems (an unknown-keys issue gives one per key). */
function describeIssue(issue: z.ZodIssue, text: string | null, fromEnv: Map<string, string>): Problem[] {
  const key = issue.path.join('.');
  const variable = fromEnv.get(key);
  const message = issue.message.replace(/^Expected/, 'expected');
  if (variable) return [{ at: `environment variable ${variable}`, text: `key ${key} ${message}`, hint: `Fix or unset ${variable}.` }];
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => {
      const line = text === null ? null : lineOfKey(text, key ? [...issue.path.map(String), k] : [k]);
      return { at: line === null ? null : `line ${line}`, text: `unknown key ${key ? `${key}.${k}` : k}`, hint: 'Remove it or fix its spelling; docs/configuration.md lists every key.' };
    });
  }
  const line = text === null ? null : lineOfKey(text, issue.path.map(String));
  return [{ at: line === null ? null : `line ${line}`, text: `key ${key} ${message}`, hint: `Set ${key} to a valid value (see docs/configuration.md).` }];
}

/** One ConfigError for all problems: one problem as one sentence, several as a list (one per line). */
function configProblems(where: string, problems: Problem[]): ConfigError {
  if (problems.length === 1) {
    const [p] = problems as [Problem];
    if (p.at?.startsWith('environment')) return new ConfigError(`E${p.at.slice(1)}: ${p.text}.`, p.hint);
    return new ConfigError(`${where}${p.at ? `, ${p.at}` : ''}: ${p.text}.`, p.hint);
  }
  // environment first, then the file's problems in the order of their lines
  const order = (p: Problem) => (p.at?.startsWith('environment') ? -1 : p.at ? Number(p.at.replace('line ', '')) : Infinity);
  const lines = [...problems].sort((a, b) => order(a) - order(b)).map((p) => `  ${p.at ? `${p.at}: ` : ''}${p.text}`);
  return new ConfigError(
    `${where}: ${problems.length} problems (all of them; nothing was changed):\n${lines.join('\n')}`,
    'Fix each of them (docs/configuration.md lists every key and its values), then run again.',
  );
}

function section(raw: Record<string, unknown>, name: string): Record<string, unknown> {
  const value = raw[name];
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  const fresh: Record<string, unknown> = {};
  raw[name] = fresh;
  return fresh;
}

/**
 * Applies `LETTO_UPDATE_<SECTION>_<KEY>` variables for every key the schema knows; any other
 * `LETTO_UPDATE_*` variable (not in {@link OTHER_VARIABLES}) is a problem.
 * @returns which keys (`section.key`) came from which variable, for messages, and the unknown variables.
 */
function applyEnvironment(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): { applied: Map<string, string>; problems: Problem[] } {
  const applied = new Map<string, string>();
  const known = new Map<string, string[]>();
  // [docker] is optional (its presence makes a Docker install); its variables are known all the same
  const defaults = { ...configSchema.parse({}), docker: dockerSchema.parse({ compose_dirs: ['/'] }), database: databaseSchema.parse({}) };
  for (const [sectionName, keys] of Object.entries(defaults)) {
    const names: string[] = [];
    known.set(`LETTO_UPDATE_${sectionName.toUpperCase()}_`, names);
    for (const [key, def] of Object.entries(keys as Record<string, unknown>)) {
      const variable = `LETTO_UPDATE_${sectionName}_${key}`.toUpperCase();
      names.push(variable);
      const value = env[variable];
      if (value === undefined) continue;
      applied.set(`${sectionName}.${key}`, variable);
      section(raw, sectionName)[key] =
        typeof def === 'number' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)
          ? Number(value)
          : typeof def === 'boolean' && /^\s*(true|false)\s*$/i.test(value)
            ? value.trim().toLowerCase() === 'true'
            : value;
    }
  }
  const problems: Problem[] = [];
  for (const variable of Object.keys(env).filter((name) => name.startsWith('LETTO_UPDATE_')).sort()) {
    if (OTHER_VARIABLES.has(variable) || [...applied.values()].includes(variable)) continue;
    const sectionVariables = [...known].find(([prefix]) => variable.startsWith(prefix))?.[1];
    problems.push({
      at: `environment variable ${variable}`,
      text: sectionVariables
        ? `not a setting (this section's are ${sectionVariables.join(', ')})`
        : `not a setting (sections: ${[...known.keys()].map((prefix) => `${prefix}…`).join(', ')}; and ${[...OTHER_VARIABLES].filter((v) => v !== 'LETTO_UPDATE_FAULT').join(', ')})`,
      hint: `Fix the spelling of ${variable} or unset it; docs/configuration.md lists every key.`,
    });
  }
  return { applied, problems };
}

/**
 * Plain http is allowed only to loopback, or to any host with `server.allow_plain_http = true`:
 * otherwise the password and the WAR would cross a network in clear.
 */
function checkUrlScheme(url: string, allowPlainHttp: boolean, at: string | null): Problem | null {
  const parsed = new URL(url);
  if (parsed.protocol === 'https:') return null;
  if (parsed.protocol === 'http:' && (allowPlainHttp || isLoopbackHost(parsed.hostname))) return null;
  if (parsed.protocol === 'http:') {
    return {
      at,
      text: `key server.url = "${url}" is not https: plain http:// to another machine (${parsed.hostname}) would send the password and the WAR unencrypted. Nothing was contacted`,
      hint: 'Use an https:// URL. If the download server really offers only http (e.g. a mirror in the school network), set server.allow_plain_http = true.',
    };
  }
  return { at, text: `key server.url = "${url}" is not https. Nothing was contacted`, hint: 'Use an https:// URL like https://letto.at/download/letto/.' };
}

/** True for localhost, 127.0.0.0/8 and ::1. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The 1-based line of `[section]`'s `key = …` (path `[section, key]`) or of the `[section]` header
 * (path `[section]`) in TOML `text`; null when not found (e.g. a dotted or inline-table spelling).
 */
export function lineOfKey(text: string, path: string[]): number | null {
  const [sectionName, key] = path;
  let current: string | null = null;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const header = /^\[\s*([A-Za-z0-9_-]+)\s*\]/.exec(line);
    if (header) {
      current = header[1]!;
      if (key === undefined && current === sectionName) return i + 1;
      continue;
    }
    if (key !== undefined && current === sectionName && new RegExp(`^"?${key.replace(/[^A-Za-z0-9_]/g, '')}"?\\s*=`).test(line)) return i + 1;
  }
  return null;
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

/**
 * Reads the download password: env `LETTO_UPDATE_PASSWORD`, else `server.password_file` (first line,
 * trailing newline removed). Returns null when neither is set (then downloads go without credentials).
 * With `server.user` set, the password file must exist and hold a password.
 *
 * @throws ConfigError (exit 2) when the file is missing (with `server.user` set), empty, unreadable, or
 * readable by group or others (like ssh with keys).
 */
export async function readPassword(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  if (env.LETTO_UPDATE_PASSWORD) return env.LETTO_UPDATE_PASSWORD;
  const file = config.server.password_file;
  return file ? readSecretFile(file, 'server.password_file', { optional: !config.server.user, variable: 'LETTO_UPDATE_PASSWORD' }) : null;
}

/**
 * Reads a secret from the first line of `file` (`server.password_file`, `notify.smtp_password_file`),
 * refusing a file that group or others can read, like ssh does with keys, and an empty one.
 * @param key the config key naming the file, for messages.
 * @param options.optional a missing file is no secret (null) instead of an error.
 * @param options.variable the environment variable that may give the secret instead, for hints.
 * @throws ConfigError (exit 2) when the file is unreadable, readable by others, empty, or missing (unless optional).
 */
export async function readSecretFile(file: string, key: string, options: { optional?: boolean; variable?: string } = {}): Promise<string | null> {
  const orVariable = options.variable ? `, or set ${options.variable}` : '';
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (options.optional && code === 'ENOENT') return null;
    if (code === 'ENOENT') {
      throw new ConfigError(`${key} ${file} does not exist.`, `Write the secret as the first line of ${file} (chmod 600)${orVariable}, or point ${key} at the right file.`);
    }
    throw unreadableSecret(file, key, error as NodeJS.ErrnoException, orVariable);
  }
  if ((info.mode & 0o077) !== 0) {
    throw new ConfigError(`${key} ${file} is readable by others (mode ${(info.mode & 0o777).toString(8)}).`, `Run: chmod 600 ${file}`);
  }
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw unreadableSecret(file, key, error as NodeJS.ErrnoException, orVariable);
  }
  const secret = text.split(/\r?\n/)[0] ?? '';
  if (secret === '') {
    throw new ConfigError(`${key} ${file} is empty: its first line must be the secret. Nothing was contacted.`, `Write the secret as the first line of ${file}${orVariable}.`);
  }
  return secret;
}

function unreadableSecret(file: string, key: string, error: NodeJS.ErrnoException, orVariable: string): ConfigError {
  if (error.code === 'EACCES' || error.code === 'EPERM') {
    return new ConfigError(`Cannot read ${key} ${file}: permission denied for ${describeUser()}.`, `Run letto-update as root or as the owner of ${file}${orVariable}.`);
  }
  return new ConfigError(`Cannot read ${key} ${file}: ${error.message}.`, `Point ${key} at a readable file (first line: the secret, chmod 600)${orVariable}.`);
}
