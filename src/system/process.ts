import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Options } from 'execa';
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

/**
 * Creates the execa-backed {@link ProcessRunner}. The child gets HOME, USER and LOGNAME of the account
 * and not the download password. Its output goes to files, not pipes: a start script leaves TomEE
 * running in the background, and a daemon that inherited our pipes would keep us waiting.
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
        const options: Options = {
          reject: false,
          timeout: timeoutSeconds * 1000,
          stdin: 'ignore' as const,
          // plain file descriptors are handed to the child as they are (no pipe in between)
          // (execa passes any fd number through to spawn; its types only list 3–9)
          stdout: outHandle.fd as 3,
          stderr: errHandle.fd as 3,
          cleanup: false,
          extendEnv: false,
          cwd: '/',
          env: childEnv(account),
          ...(switchUser ? { uid: account.uid, gid: account.gid } : {}),
        };
        // execa is loaded on first use: `download` and `check` never start a process, and loading it costs ~0.2 s
        const { execa } = await import('execa');
        const result = await execa(command, [], options);
        const read = (path: string) => readFile(path, 'utf8').then((t) => t.trim(), () => '');
        const failure =
          result.exitCode === undefined || result.timedOut || result.signal
            ? result.timedOut
              ? `${command} did not finish within ${timeoutSeconds} s`
              : spawnFailure(command, account.name, result.code, result.shortMessage)
            : undefined;
        return {
          exitCode: result.exitCode ?? -1,
          stdout: await read(out),
          stderr: await read(err),
          timedOut: Boolean(result.timedOut),
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
