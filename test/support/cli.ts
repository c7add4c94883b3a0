/**
 * Helpers for CLI integration tests: run the built CLI (`bin/letto-update.js`, needs `dist/` from
 * `npx tsc -p tsconfig.json`) as a child process, and lay out a temporary LeTTo server without TomEE.
 *
 * The layout's start/stop/status scripts are tiny shell scripts that append their name to a calls
 * file, so a test can assert "the server was not touched": no script other than status ran and the
 * bytes of `webapps/letto.war` are unchanged.
 */
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWar } from '../../fixtures/build-war.js';
import { readWarRevision } from '../../src/war/verify.js';

/** Absolute path of the repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Absolute path of the CLI entry point. */
export const CLI_BIN = join(REPO_ROOT, 'bin', 'letto-update.js');
/**
 * The CLI that {@link runCli} and {@link spawnCli} run: `LETTO_TEST_CLI` names an executable to test
 * instead (e.g. `build/letto-update`, the single executable of `npm run package`), else `node bin/letto-update.js`.
 */
export const CLI_COMMAND: readonly string[] = process.env.LETTO_TEST_CLI ? [resolve(REPO_ROOT, process.env.LETTO_TEST_CLI)] : [process.execPath, CLI_BIN];

/** What a CLI run returned. */
export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The signal that ended the process (e.g. `SIGKILL`), else null. */
  signal: string | null;
}

/**
 * Runs `node bin/letto-update.js ...args` (or the executable named by `LETTO_TEST_CLI`, see {@link CLI_COMMAND}). The child gets this process's environment without any
 * `LETTO_UPDATE_*` variable (so neither a password nor a config path leaks in), plus `opts.env`.
 * stdin is a pipe (not a terminal), so the CLI never asks for confirmation.
 */
export async function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const result = await spawnCli(args, opts);
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    signal: result.signal ?? null,
  };
}

/** Options of {@link runCli} and {@link spawnCli}: extra environment, stdin, timeout (ms, default 60 s). */
export interface CliOptions {
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
  /** Run in a process group of its own (so that `process.kill(-pid)` ends it with its children, as systemd does). */
  detached?: boolean;
}

/**
 * Starts the built CLI like {@link runCli}, with the same environment (the test's own `LETTO_UPDATE_*`
 * variables removed), and returns the running child, e.g. to kill it; awaiting it gives execa's result.
 */
export function spawnCli(args: string[], opts: CliOptions = {}) {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('LETTO_UPDATE_')) env[key] = value;
  }
  Object.assign(env, opts.env ?? {});
  return execa(CLI_COMMAND[0]!, [...CLI_COMMAND.slice(1), ...args], {
    reject: false,
    extendEnv: false,
    env,
    cwd: REPO_ROOT,
    input: opts.input ?? '',
    timeout: opts.timeoutMs ?? 60_000,
    stripFinalNewline: false,
    detached: opts.detached ?? false,
  });
}

/** What a child of {@link spawnCli} printed (stdout and stderr) until `text` appeared, or until it ended. */
export function outputUntil(child: ReturnType<typeof spawnCli>, text: string): Promise<string> {
  let seen = '';
  return new Promise<string>((resolve) => {
    const look = (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (seen.includes(text)) resolve(seen);
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    void child.then(() => resolve(seen));
  });
}

/**
 * Runs the built CLI detached (its own process group) and kills it with SIGKILL after `delayMs`: the
 * whole process group when `group` (as systemd does, compose and docker children included), else only
 * the CLI (its children run on). `context` says which, when, and how the run ended, for messages.
 */
export async function killAfter(args: string[], opts: CliOptions, kill: { delayMs: number; group: boolean }): Promise<{ result: Awaited<ReturnType<typeof spawnCli>>; context: string }> {
  const child = spawnCli(args, { ...opts, detached: true });
  const timer = setTimeout(() => (kill.group ? process.kill(-child.pid!, 'SIGKILL') : child.kill('SIGKILL')), kill.delayMs);
  const result = await child;
  clearTimeout(timer);
  return { result, context: `${kill.group ? 'process group' : 'process'} killed at ${kill.delayMs} ms (${result.signal ?? `ended first, exit ${result.exitCode}`})` };
}

/** A temporary LeTTo server layout (no TomEE): see {@link makeServerLayout}. */
export interface ServerLayout {
  root: string;
  webapps: string;
  /** `webapps/letto.war` */
  war: string;
  staging: string;
  backups: string;
  state: string;
  /** The backup lock path (not created). */
  backupLock: string;
  scripts: { start: string; stop: string; status: string };
  /** File the scripts append their name to, one per line. */
  callsFile: string;
  /** File whose existence makes status.sh report a running TomEE (PID 4242). */
  runningFlag: string;
  configPath: string;
  passwordFile: string;
  /** Names of the scripts run so far, in order. */
  calls(): Promise<string[]>;
  /** Current bytes of `webapps/letto.war`. */
  warBytes(): Promise<Buffer>;
  /** The bytes `webapps/letto.war` had when the layout was made. */
  initialWar: Buffer;
  cleanup(): Promise<void>;
}

/**
 * Creates a temporary LeTTo layout: `opt/tomee/webapps/letto.war` of `revision` (null: no revision.txt),
 * `opt/letto/{war,backup/war}`, `var/lib/letto-update`, the scripts, and the backup lock path
 * `sicherung/sqlsicherungaktiv` (absent). TomEE is "running" unless `running: false`.
 */
export async function makeServerLayout(opts: { revision?: number | null; running?: boolean } = {}): Promise<ServerLayout> {
  const root = await mkdtemp(join(tmpdir(), 'letto-cli-'));
  const webapps = join(root, 'opt/tomee/webapps');
  const staging = join(root, 'opt/letto/war');
  const backups = join(root, 'opt/letto/backup/war');
  const state = join(root, 'var/lib/letto-update');
  const sicherung = join(root, 'sicherung');
  const letto = join(root, 'opt/letto');
  for (const dir of [webapps, staging, backups, state, sicherung, join(root, 'etc')]) await mkdir(dir, { recursive: true });
  const war = join(webapps, 'letto.war');
  await buildWar(war, { revision: opts.revision === undefined ? 6880 : opts.revision });
  const callsFile = join(root, 'calls.log');
  const runningFlag = join(root, 'tomee.running');
  if (opts.running !== false) await writeFile(runningFlag, '');
  const script = async (name: string, body: string): Promise<string> => {
    const path = join(letto, `${name}.sh`);
    await writeFile(path, `#!/bin/sh\necho ${name} >> '${callsFile}'\n${body}\n`);
    await chmod(path, 0o755);
    return path;
  };
  const scripts = {
    start: await script('start', `touch '${runningFlag}'`),
    stop: await script('stop', `rm -f '${runningFlag}'`),
    status: await script('status', `if [ -e '${runningFlag}' ]; then echo 4242; exit 0; else echo 'not running'; exit 3; fi`),
  };
  const initialWar = await readFile(war);
  return {
    root,
    webapps,
    war,
    staging,
    backups,
    state,
    backupLock: join(sicherung, 'sqlsicherungaktiv'),
    scripts,
    callsFile,
    runningFlag,
    configPath: join(root, 'etc/config.toml'),
    passwordFile: join(root, 'etc/password'),
    async calls() {
      const text = await readFile(callsFile, 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean);
    },
    warBytes: () => readFile(war),
    initialWar,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** Values for one config section (strings, numbers or booleans). */
type Section = Record<string, string | number | boolean>;

/** What {@link writeConfig} may change. */
export interface ConfigOverrides {
  server?: Section;
  tomee?: Section;
  paths?: Section;
  /** Password written to the password file (default `geheim`); null: no password file. */
  password?: string | null;
  /** Mode of the password file (default 0o600). */
  passwordMode?: number;
  /** Raw TOML appended at the end (for unknown keys and the like). */
  extra?: string;
}

/** The download server as far as the config is concerned. */
export interface ServerInfo {
  url: string;
  caPem: string;
  user?: string;
}

function tomlValue(value: string | number | boolean): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * Writes `layout.configPath` (and the password file, mode 0600, and `ca.pem`) pointing at `server`
 * and at the layout's folders and scripts. Returns the config path.
 */
export async function writeConfig(layout: ServerLayout, server: ServerInfo, overrides: ConfigOverrides = {}): Promise<string> {
  const caFile = join(layout.root, 'etc/ca.pem');
  if (server.caPem) await writeFile(caFile, server.caPem);
  const password = overrides.password === undefined ? 'geheim' : overrides.password;
  await rm(layout.passwordFile, { force: true });
  if (password !== null) {
    await writeFile(layout.passwordFile, `${password}\n`, { mode: 0o600 });
    await chmod(layout.passwordFile, overrides.passwordMode ?? 0o600);
  }
  const sections: Record<'server' | 'tomee' | 'paths', Section> = {
    server: {
      url: server.url,
      user: server.user ?? 'letto',
      password_file: layout.passwordFile,
      channel: 'stable',
      ca_file: server.caPem ? caFile : '',
      ...overrides.server,
    },
    tomee: {
      webapps: layout.webapps,
      war_name: 'letto.war',
      start: layout.scripts.start,
      stop: layout.scripts.stop,
      status: layout.scripts.status,
      health_url: 'http://127.0.0.1:9/letto/test.jsf',
      health_timeout: 5,
      ...overrides.tomee,
    },
    paths: {
      staging: layout.staging,
      backups: layout.backups,
      keep: 5,
      state: layout.state,
      backup_lock: layout.backupLock,
      ...overrides.paths,
    },
  };
  const text =
    Object.entries(sections)
      .map(([name, keys]) => `[${name}]\n${Object.entries(keys).map(([k, v]) => `${k} = ${tomlValue(v)}`).join('\n')}\n`)
      .join('\n') + (overrides.extra ? `\n${overrides.extra}\n` : '');
  await writeFile(layout.configPath, text);
  return layout.configPath;
}

/** Names in a folder ([] when missing). */
export async function listNames(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

/** A loopback stand-in for LeTTo's health page, see {@link startFakeHealth}. */
export interface FakeHealth {
  /** `http://127.0.0.1:<port>/letto/test.jsf` */
  url: string;
  close(): Promise<void>;
}

/**
 * LeTTo's health page for a {@link ServerLayout} without TomEE (plain HTTP on loopback): HTTP 200 for
 * `/letto/test.jsf` while the layout's fake TomEE runs (its start script's flag file exists) and its
 * `letto.war` holds a revision not in `unhealthy`; 404 otherwise. `layout()` names the layout of the
 * test running now (null: none); `delayMs()` delays every answer (a slow LeTTo).
 */
export async function startFakeHealth(opts: {
  layout: () => ServerLayout | null;
  unhealthy?: ReadonlySet<number>;
  delayMs?: () => number;
}): Promise<FakeHealth> {
  const server = createServer((req, res) => {
    void (async () => {
      const delay = opts.delayMs?.() ?? 0;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      const layout = opts.layout();
      const running = layout ? await readFile(layout.runningFlag).then(() => true, () => false) : false;
      const revision = layout ? await readWarRevision(layout.war).catch(() => null) : null;
      const ok = running && req.url === '/letto/test.jsf' && revision !== null && !opts.unhealthy?.has(revision);
      res.writeHead(ok ? 200 : 404, { 'content-type': 'text/plain' });
      res.end(ok ? `LeTTo test page revision ${revision}\n` : 'not found\n');
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/letto/test.jsf`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
