/**
 * How letto-update reaches LeTTo's MySQL/MariaDB server: the argv of the server's own client and dump
 * tool for one database, and a query helper on top. A TomEE install runs them on the host, connecting
 * through the local socket (as `root`, which Debian's MariaDB lets in by socket authentication) or with
 * the admin's MySQL option file (`--defaults-extra-file`). A Docker install runs them inside the MySQL
 * container (`docker exec -i letto-mysql …`), where the password is read from the container's own
 * environment. No password ever appears in an argv, in the environment of a child of letto-update or in
 * a message: letto-update never holds one.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { DatabaseConfig } from '../config/config.js';
import { LettoError } from '../errors.js';
import { withoutSecrets } from '../system/secret-env.js';

/** The two programs of one server: `client` (mariadb/mysql) and `dump` (mariadb-dump/mysqldump), each as argv before the database name. */
export interface Connection {
  /** For messages: `the MariaDB server on /run/mysqld/mysqld.sock`. */
  readonly where: string;
  /** What to check when the server denies access. */
  readonly accessHint: string;
  /** argv of the client reading SQL from stdin into `database` (none: no default database). */
  client(database?: string): string[];
  /** argv of the dump tool writing `database` to stdout (consistent snapshot, routines and triggers). */
  dump(database: string): string[];
}

/** The first of `names` found executable on PATH; the first name itself when none is (the spawn error then says so). */
function onPath(names: string[]): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    for (const name of names) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // next
      }
    }
  }
  return names[0]!;
}

/**
 * The connection of a TomEE install from `[database]`: `option_file` (the admin's `[client]` section
 * with user and password, passed as `--defaults-extra-file`, which must come first) or `user` over the
 * local `socket` (empty: the client's default socket).
 */
export function localConnection(config: DatabaseConfig): Connection {
  const common: string[] = [];
  if (config.option_file) common.push(`--defaults-extra-file=${config.option_file}`);
  else common.push(`--user=${config.user}`);
  if (config.socket) common.push(`--socket=${config.socket}`);
  const client = config.client_command || onPath(['mariadb', 'mysql']);
  const dump = config.dump_command || onPath(['mariadb-dump', 'mysqldump']);
  return {
    where: `the database server on ${config.socket || 'its default socket'}`,
    accessHint: 'Give [database] a user that may read and write LeTTo\'s databases: root over the local socket, or option_file naming a MySQL option file with user and password (mode 600).',
    client: (database) => [client, ...common, '--batch', '--skip-column-names', '--raw', ...(database ? [database] : [])],
    dump: (database) => [dump, ...common, '--single-transaction', '--quick', '--routines', '--triggers', '--events', '--hex-blob', '--default-character-set=utf8mb4', database],
  };
}

/**
 * The script `sh -c` runs inside the container: `$1` names the variable of the container's environment
 * that holds the password (empty: none), `$2`/`$3` the MariaDB and the MySQL name of the tool; the rest
 * is the tool's argv. The password reaches the tool as `MYSQL_PWD`, read by MariaDB's and MySQL's
 * clients, so it is in no argv; it lives only in that process inside the container, which already has
 * it in its environment (LeTTo's compose file puts it there).
 */
const IN_CONTAINER = [
  'v=$1; a=$2; b=$3; shift 3',
  'if [ -n "$v" ]; then p=$(printenv "$v") || p=""; [ -n "$p" ] && export MYSQL_PWD="$p"; unset p; fi',
  'if command -v "$a" >/dev/null 2>&1; then exec "$a" "$@"; fi',
  'exec "$b" "$@"',
].join('\n');

/**
 * The connection of a Docker install from `[database]`: the tools inside `container`
 * (`docker exec -i`, no tty), as `user` with the password of the container's variable
 * `password_variable` (see {@link IN_CONTAINER}).
 * @param docker the docker CLI (`docker.command`).
 */
export function containerConnection(config: DatabaseConfig, docker: string): Connection {
  const run = (tools: [string, string], args: string[]) => [docker, 'exec', '-i', config.container, 'sh', '-c', IN_CONTAINER, 'letto-update', config.password_variable, ...tools, `--user=${config.user}`, ...args];
  return {
    where: `the database server in container ${config.container}`,
    accessHint: `Check database.user (${config.user}) and database.password_variable (${config.password_variable || 'none'}): the variable in the environment of container ${config.container} that holds that user's password (LeTTo's compose folder sets it from its .env); \`docker exec ${config.container} sh -c 'env | cut -d= -f1'\` lists the names (without the values).`,
    client: (database) => run(['mariadb', 'mysql'], ['--batch', '--skip-column-names', '--raw', ...(database ? [database] : [])]),
    dump: (database) => run(['mariadb-dump', 'mysqldump'], ['--single-transaction', '--quick', '--routines', '--triggers', '--events', '--hex-blob', '--default-character-set=utf8mb4', database]),
  };
}

/**
 * Why a client or dump run failed, in plain words, from its stderr (the server's own message stays in it).
 * @returns a LettoError (exit 1) with a hint.
 */
export function explainFailure(what: string, connection: Connection, stderr: string, code: number | null): LettoError {
  const text = stderr.trim().split('\n').slice(-3).join(' ');
  if (/Access denied/i.test(text)) {
    return new LettoError(`${what}: access denied by ${connection.where} (${text}).`, { hint: connection.accessHint });
  }
  if (/Can't connect|Lost connection|server has gone away|No such file or directory.*sock|\(2002\)|\(2003\)/i.test(text)) {
    return new LettoError(`${what}: ${connection.where} does not answer (${text}).`, { hint: 'Start the database server (systemctl start mariadb), then run again.' });
  }
  if (/No such container|is not running|is restarting/i.test(text)) {
    return new LettoError(`${what}: ${connection.where} does not run (${text}).`, {
      hint: 'Start the MySQL container (docker compose up -d in its compose folder), or fix database.container in the config.',
    });
  }
  if (/Unknown database/i.test(text)) {
    return new LettoError(`${what}: ${text}.`, { hint: 'Check database.databases in the config: it must name LeTTo\'s databases.' });
  }
  return new LettoError(`${what}: the command ended with ${code === null ? 'a signal' : `exit code ${code}`}${text ? ` (${text})` : ''}.`, {
    hint: 'Run the same as root by hand (docs/database.md shows the command) to see why.',
  });
}

/** A client or dump tool started by {@link startTool}. */
export interface ToolRun {
  child: ChildProcess;
  /** Resolves with the exit code (null: a signal; -1: it could not be started); never rejects. */
  exited: Promise<number | null>;
  /** What it wrote to stderr. */
  stderr(): string;
  /** Whether it was killed because `timeoutSeconds` ran out. */
  timedOut(): boolean;
}

/**
 * Starts `argv` (no shell, without letto-update's secrets in its environment) with `stdio` (stderr
 * must be a pipe), collecting its stderr, and kills it with SIGKILL after `timeoutSeconds`.
 */
export function startTool(argv: string[], stdio: StdioOptions, timeoutSeconds: number): ToolRun {
  const child = spawn(argv[0]!, argv.slice(1), { stdio, env: withoutSecrets() });
  const stderr: Buffer[] = [];
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutSeconds * 1000);
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (code) => resolve(code));
  }).finally(() => clearTimeout(timer));
  return { child, exited, stderr: () => Buffer.concat(stderr).toString('utf8'), timedOut: () => timedOut };
}

/**
 * Runs `sql` through the client (SQL on stdin, never in argv), in `database` when given.
 * @returns the result rows, columns split at tabs (`--batch --raw`: NULL reads `NULL`).
 * @throws LettoError ({@link explainFailure}) when the client fails.
 */
export async function query(connection: Connection, sql: string, database?: string): Promise<string[][]> {
  const argv = connection.client(database);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: withoutSecrets() });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  child.stdin.on('error', () => undefined); // a client that failed to connect closes its stdin early
  child.stdin.end(sql);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (exit) => resolve(exit));
  }).catch((error: Error) => {
    throw new LettoError(`Cannot run ${argv[0]}: ${error.message}.`, { hint: 'Install the MariaDB/MySQL client (apt install mariadb-client) or set database.client_command.' });
  });
  if (code !== 0) throw explainFailure(`Asking ${connection.where}`, connection, Buffer.concat(err).toString('utf8'), code);
  const text = Buffer.concat(out).toString('utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('\t'));
}

/** Quotes a name for SQL (`letto` → `` `letto` ``). */
export function quoteName(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

/** Quotes a string for SQL. */
export function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
