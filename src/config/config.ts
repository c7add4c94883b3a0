/**
 * Loading the config: defaults < file (TOML, smol-toml) < environment (`LETTO_UPDATE_<SECTION>_<KEY>`)
 * < flags, checked against the one schema (src/config/schema.ts), with messages that name the file, the
 * line or variable, and the fix. Secrets: src/config/secrets.ts.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { isLoopbackHost } from '../system/loopback.js';
import { configSchema, DEFAULT_CONFIG_PATH, dockerSchema, databaseSchema, type Config, type ConfigFlags, type LoadedConfig } from './schema.js';
import { describeUser } from './secrets.js';

export { configSchema, DEFAULT_CONFIG_PATH, type Config, type ConfigFlags, type DockerConfig, type DatabaseConfig, type LoadedConfig } from './schema.js';
export { readPassword, readSecretFile } from './secrets.js';
export { isLoopbackHost } from '../system/loopback.js';

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
