import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Account } from './users.js';

/**
 * What a script run returned: its exit code and output (stdout and stderr, trimmed). `failure` is set
 * when the script did not run to an exit code of its own: it could not be started (missing, not
 * executable), was killed by a signal, or timed out. Callers must not read anything into exitCode then.
 */
export interface ScriptResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  failure?: string;
}

/** The thin process module: every child process letto-update starts goes through here. */
export interface ProcessRunner {
  /**
   * Runs `command` (a script path, no shell, no arguments) as `account`: switched to its uid/gid when
   * this process is root, directly otherwise. Never throws for a non-zero exit; the caller decides.
   * @param timeoutSeconds the script is killed after this many seconds.
   */
  runScript(command: string, account: Account, timeoutSeconds: number): Promise<ScriptResult>;
}

/** Seconds a script gets after SIGTERM (sent at its timeout) before SIGKILL. */
const KILL_GRACE = 5;

/**
 * Creates the {@link ProcessRunner} over `node:child_process` (loaded on first use). The child gets
 * HOME, USER and LOGNAME of the account and not the download password. Its output goes to files, not
 * pipes: a start script leaves TomEE running in the background, and a daemon that inherited our pipes
 * would keep us waiting. At its timeout the script gets SIGTERM, 5 s later SIGKILL.
 *
 * Node's own spawn rather than execa: with output to files, no shell and no pipes, execa added nothing
 * here but ~17 ms of CPU and 240 kB of code to load for every `health` run (docs/performance.md).
 */
export function createProcessRunner(): ProcessRunner {
  return {
    async runScript(command, account, timeoutSeconds) {
      const switchUser = process.getuid?.() === 0 && account.uid !== 0;
      const dir = await mkdtemp(join(tmpdir(), 'letto-update-script-'));
      const out = join(dir, 'stdout');
      const err = join(dir, 'stderr');
      const outHandle = await open(out, 'w', 0o600);
      const errHandle = await open(err, 'w', 0o600);
      try {
        const { spawn } = await import('node:child_process');
        const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; error?: Error }>((resolve) => {
          // plain file descriptors are handed to the child as they are (no pipe in between)
          const child = spawn(command, [], {
            stdio: ['ignore', outHandle.fd, errHandle.fd],
            cwd: '/',
            env: childEnv(account),
            ...(switchUser ? { uid: account.uid, gid: account.gid } : {}),
          });
          let timedOut = false;
          let killer: NodeJS.Timeout | undefined;
          const timer = setTimeout(() => {
            timedOut = true;
            child.kill('SIGTERM');
            killer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE * 1000);
          }, timeoutSeconds * 1000);
          const done = (result: { code: number | null; signal: NodeJS.Signals | null; error?: Error }) => {
            clearTimeout(timer);
            clearTimeout(killer);
            resolve({ ...result, timedOut });
          };
          child.once('error', (error) => done({ code: null, signal: null, error }));
          child.once('exit', (code, signal) => done({ code, signal }));
        });
        const read = (path: string) => readFile(path, 'utf8').then((t) => t.trim(), () => '');
        const failure = ended.timedOut
          ? `${command} did not finish within ${timeoutSeconds} s`
          : ended.error
            ? spawnFailure(command, account.name, (ended.error as NodeJS.ErrnoException).code, ended.error.message)
            : ended.code === null
              ? `${command} was killed by ${ended.signal ?? 'a signal'}`
              : undefined;
        return {
          exitCode: ended.code ?? -1,
          stdout: await read(out),
          stderr: await read(err),
          timedOut: ended.timedOut,
          ...(failure ? { failure } : {}),
        };
      } finally {
        await outHandle.close();
        await errHandle.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Variables that hold passwords: never handed to a child process. */
const SECRET_VARIABLES = new Set(['LETTO_UPDATE_PASSWORD', 'LETTO_UPDATE_SMTP_PASSWORD']);

/** The child's environment: ours without the download and SMTP passwords, with the account's HOME, USER, LOGNAME. */
function childEnv(account: Account): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !SECRET_VARIABLES.has(key)) env[key] = value;
  return { ...env, HOME: account.home, USER: account.name, LOGNAME: account.name };
}

/**
 * One line saying why `command` could not be run: `/opt/letto/status.sh does not exist (ENOENT)`,
 * `… is not executable for ${user} (EACCES)`, else execa's message with its lines joined.
 */
function spawnFailure(command: string, user: string, code: string | undefined, message: string | undefined): string {
  if (code === 'ENOENT') return `${command} does not exist (ENOENT)`;
  if (code === 'EACCES') return `${command} is not executable for ${user} (EACCES)`;
  return (message ?? `${command} could not be run`).split(/\s*\n\s*/).join('; ');
}
