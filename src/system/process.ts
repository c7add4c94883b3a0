import { spawn } from 'node:child_process';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { processIdentity } from './proc.js';
import type { Account } from './users.js';
import { withoutSecrets } from './secret-env.js';

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

/**
 * A script's process group as it is recorded before the script starts: the first process (`pgid`,
 * which is also the group's and the session's id) with its identity (`<boot id>:<start ticks>`, see
 * proc.ts), when it started (ISO 8601) and how many seconds it may run.
 */
export interface ScriptGroup {
  command: string;
  pgid: number;
  process: string | null;
  started: string;
  timeout: number;
}

/** Options of one script run: `beforeStart` records the group; the script starts only once it resolved. */
export interface ScriptOptions {
  /** Called with the new group before the script runs its first line; when it throws, the script never runs. */
  beforeStart?: (group: ScriptGroup) => Promise<void>;
  /** Arguments for the command (none for TomEE's scripts; `up -d --no-build` for compose). */
  args?: string[];
  /** Working folder (default `/`; compose reads the folder's files and `.env`). */
  cwd?: string;
}

/** The thin process module: every child process letto-update starts goes through here. */
export interface ProcessRunner {
  /**
   * Runs `command` (a script path or program, no shell, `options.args` as its arguments) as `account`: switched to its uid/gid when
   * this process is root, directly otherwise. Never throws for a non-zero exit; the caller decides.
   * @param timeoutSeconds after this many seconds the script's process group gets SIGTERM, and
   * {@link KILL_GRACE} seconds later SIGKILL.
   */
  runScript(command: string, account: Account, timeoutSeconds: number, options?: ScriptOptions): Promise<ScriptResult>;
}

/** Seconds between SIGTERM and SIGKILL to a script's process group. */
export const KILL_GRACE = 10;

/*
 * The child is `sh -c GATE command`, started in a session (and process group) of its own (setsid), so
 * that a signal to letto-update's group (Ctrl-C, a unit's stop) never reaches the script or the TomEE
 * it starts, and so that a timeout can end the script with everything it started. The gate waits for
 * one line on stdin: the group is recorded (beforeStart) in between, so a later run knows of every
 * script that may still be running. If letto-update dies before it sent the line, the gate reads EOF
 * and the script never runs. Then the gate sets the IO class to "none" (derived from the nice level,
 * which this process resets to 0 before): TomEE must not inherit the nightly run's Nice=10 and idle IO.
 */
const GATE = 'IFS= read -r go && [ "$go" = go ] || exit 125; exec 0</dev/null; command -v ionice >/dev/null 2>&1 && ionice -c 0 -p $$ 2>/dev/null; exec "$0" "$@"';

/**
 * Creates the {@link ProcessRunner}. The child gets HOME, USER and LOGNAME of the account and not the
 * download password. Its output goes to files, not pipes: a start script leaves TomEE running in the
 * background, and a daemon that inherited our pipes would keep us waiting.
 */
export function createProcessRunner(): ProcessRunner {
  return {
    async runScript(command, account, timeoutSeconds, options = {}) {
      const switchUser = process.getuid?.() === 0 && account.uid !== 0;
      const dir = await mkdtemp(join(tmpdir(), 'letto-update-script-'));
      const out = join(dir, 'stdout');
      const err = join(dir, 'stderr');
      const outHandle = await open(out, 'w', 0o600);
      const errHandle = await open(err, 'w', 0o600);
      const read = (path: string) => readFile(path, 'utf8').then((t) => t.trim(), () => '');
      try {
        const child = spawn('/bin/sh', ['-c', GATE, command, ...(options.args ?? [])], {
          detached: true,
          stdio: ['pipe', outHandle.fd, errHandle.fd],
          cwd: options.cwd ?? '/',
          env: childEnv(account),
          ...(switchUser ? { uid: account.uid, gid: account.gid } : {}),
        });
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
          child.once('exit', (code, signal) => resolve({ code, signal }));
          child.once('error', (error) => resolve({ code: null, signal: null, error }));
        });
        child.stdin?.on('error', () => undefined); // the gate may be gone already (EPIPE)
        const pgid = child.pid;
        if (pgid === undefined) {
          const { error } = await exited;
          return { exitCode: -1, stdout: '', stderr: '', timedOut: false, failure: `${command} could not be run (${error?.message ?? 'spawn failed'})` };
        }
        try {
          resetPriority(pgid);
          await options.beforeStart?.({ command, pgid, process: processIdentity(pgid), started: new Date().toISOString(), timeout: timeoutSeconds });
        } catch (error) {
          child.stdin?.end(); // EOF: the gate exits without running the script
          await exited;
          throw error;
        }
        child.stdin?.end('go\n');
        let timedOut = false;
        let killTimer: NodeJS.Timeout | undefined;
        const termTimer = setTimeout(() => {
          timedOut = true;
          signalGroup(pgid, 'SIGTERM');
          killTimer = setTimeout(() => signalGroup(pgid, 'SIGKILL'), KILL_GRACE * 1000);
        }, timeoutSeconds * 1000);
        const { code, signal, error } = await exited;
        clearTimeout(termTimer);
        if (timedOut) {
          // the script's first process is gone; make sure nothing it started outlives the timeout
          clearTimeout(killTimer);
          await endGroup(pgid);
        }
        const stdout = await read(out);
        const stderr = await read(err);
        let failure: string | undefined;
        if (timedOut) failure = `${command} did not finish within ${timeoutSeconds} s; its process group ${pgid} was ended (SIGTERM, then SIGKILL after ${KILL_GRACE} s)`;
        else if (error) failure = `${command} could not be run (${error.message})`;
        else if (code === 125 && !stdout && !stderr) failure = `${command} was not started`;
        else if ((code === 126 || code === 127) && stderr.includes(`exec: ${command}:`)) failure = spawnFailure(command, account.name, code);
        else if (signal) failure = `${command} was killed by ${signal}`;
        return { exitCode: code ?? -1, stdout, stderr, timedOut, ...(failure ? { failure } : {}) };
      } finally {
        await outHandle.close();
        await errHandle.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Sends `signal` to every process of group `pgid`. False when the group is empty (ESRCH).
 * @throws other errors (EPERM: the group belongs to another user and this process is not root).
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/**
 * Ends process group `pgid`: SIGTERM, up to {@link KILL_GRACE} seconds for it to empty, then SIGKILL.
 * @returns whether something had to be killed with SIGKILL.
 */
export async function endGroup(pgid: number, grace = KILL_GRACE): Promise<boolean> {
  if (!signalGroup(pgid, 'SIGTERM')) return false;
  const deadline = Date.now() + grace * 1000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (!signalGroup(pgid, 0)) return false;
  }
  return signalGroup(pgid, 'SIGKILL');
}

/** Nice level 0 for the script (and so for the TomEE it starts); a no-op when not allowed (not root). */
function resetPriority(pid: number): void {
  try {
    setPriority(pid, 0);
  } catch {
    // lowering the nice level needs root (CAP_SYS_NICE); then the script keeps ours
  }
}

/**
 * Why the gate could not run `command` (the shell's `exec` exited 127 or 126): `/opt/letto/status.sh
 * does not exist (ENOENT)`, `… is not executable for letto (EACCES)`.
 */
function spawnFailure(command: string, user: string, code: 126 | 127): string {
  return code === 127 ? `${command} does not exist (ENOENT)` : `${command} is not executable for ${user} (EACCES)`;
}

/** The child's environment: ours without the download and SMTP passwords, with the account's HOME, USER, LOGNAME. */
function childEnv(account: Account): Record<string, string> {
  return { ...withoutSecrets(), HOME: account.home, USER: account.name, LOGNAME: account.name };
}
