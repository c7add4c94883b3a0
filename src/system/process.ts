import { execa } from 'execa';
import type { Account } from './users.js';

/** What a script run returned: its exit code and output (stdout and stderr, trimmed). */
export interface ScriptResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
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

/** Creates the execa-backed {@link ProcessRunner}. The child gets HOME, USER and LOGNAME of the account. */
export function createProcessRunner(): ProcessRunner {
  return {
    async runScript(command, account, timeoutSeconds) {
      const switchUser = process.getuid?.() === 0 && account.uid !== 0;
      const result = await execa(command, [], {
        reject: false,
        timeout: timeoutSeconds * 1000,
        stdin: 'ignore',
        // Scripts like startup.sh leave a JVM running that inherits our pipes: do not wait for it.
        buffer: true,
        cleanup: false,
        cwd: '/',
        // The download password never reaches a child process.
        env: { HOME: account.home, USER: account.name, LOGNAME: account.name, LETTO_UPDATE_PASSWORD: undefined },
        ...(switchUser ? { uid: account.uid, gid: account.gid } : {}),
      });
      return {
        exitCode: result.exitCode ?? (result.timedOut ? 124 : 1),
        stdout: String(result.stdout ?? '').trim(),
        stderr: String(result.stderr ?? '').trim(),
        timedOut: result.timedOut,
      };
    },
  };
}
