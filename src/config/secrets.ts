/**
 * Secrets the config points at (the download password, the SMTP password): read from a file whose
 * first line is the secret and that only its owner may read, or from an environment variable. A secret
 * never reaches argv, a log or output.
 */
import { readFile, stat } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import type { Config } from './schema.js';

/**
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

/** The user this process runs as, for messages: `uid 0`. */
export function describeUser(): string {
  const uid = process.getuid?.();
  return uid === undefined ? 'this user' : `uid ${uid}`;
}
