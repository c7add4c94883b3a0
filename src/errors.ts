/**
 * The error family of letto-update. Every error carries the exit code the CLI ends with and a hint
 * that tells the admin, in plain words, what to do next. Only the CLI layer turns them into output.
 *
 * Exit codes (see README, "Exit codes"):
 * - 0   done (updated, or already current)
 * - 1   failed before the running server was touched: nothing changed
 * - 2   usage or configuration error
 * - 3   the new revision failed; the previous one runs healthy again
 * - 4   the rollback failed too: the server needs a person
 * - 75  busy: another run holds the lock, or a backup is running (EX_TEMPFAIL)
 * - 100 `check`: an update is available
 */
import type { LogTail } from './system/log-tail.js';

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  rolledBack: 3,
  rollbackFailed: 4,
  busy: 75,
  updateAvailable: 100,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * `health` exits like a monitoring plugin instead, as Nagios, Icinga, monit and Checkmk read it
 * (Monitoring Plugins Development Guidelines: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
 */
export const PluginState = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 } as const;
export type PluginState = keyof typeof PluginState;

/** Base class: a failure the tool expected and can explain. */
export class LettoError extends Error {
  /** Exit code the CLI ends with. */
  readonly exitCode: ExitCode;
  /** What the admin should do next (one or two sentences). */
  readonly hint: string;
  /** Log lines that tell why (e.g. `docker logs` of the services that failed their health check), for the failure notice. */
  readonly log: LogTail | null;
  constructor(message: string, opts: { exitCode?: ExitCode; hint?: string; cause?: unknown; log?: LogTail | null } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.failed;
    this.hint = opts.hint ?? '';
    this.log = opts.log ?? null;
  }
}

/** Wrong flags or arguments on the command line. Exit 2. */
export class UsageError extends LettoError {
  constructor(message: string, hint = 'Run `letto-update --help` for the usage.') {
    super(message, { exitCode: ExitCode.usage, hint });
  }
}

/** The config file, an environment variable or the password file is wrong. Exit 2. */
export class ConfigError extends LettoError {
  constructor(message: string, hint: string) {
    super(message, { exitCode: ExitCode.usage, hint });
  }
}

/** Another run holds the lock, or a backup (backup lock file) is running. Exit 75. */
export class BusyError extends LettoError {
  constructor(message: string, hint: string) {
    super(message, { exitCode: ExitCode.busy, hint });
  }
}

/** A network answer that is not what the download server should send (404, 401, HTML instead of a revision). */
export class DownloadError extends LettoError {}

/** A downloaded WAR that failed verification (length, zip structure, CRC, web.xml, revision). */
export class VerifyError extends LettoError {}

/** A start/stop/status script failed or TomEE did not stop. */
export class ScriptError extends LettoError {}

/** A bug: something that should not happen. */
export class InternalError extends LettoError {
  constructor(message: string, cause?: unknown) {
    super(message, {
      exitCode: ExitCode.failed,
      hint: 'This is a bug in letto-update. Please report it with the output of the run (--verbose).',
      cause,
    });
  }
}

/** Wraps anything thrown into a LettoError, keeping LettoErrors as they are. */
export function asLettoError(error: unknown): LettoError {
  if (error instanceof LettoError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC') {
    return new LettoError(`The disk is full (no space left on device): ${message}`, {
      hint: 'Free space in the staging, backup and webapps folders, then run again.',
      cause: error,
    });
  }
  if (code === 'ESYMLINK') {
    return new LettoError(`${message}. Nothing was written through it.`, {
      hint: 'Find out who created the link (ls -l shows where it points), remove it, then run again.',
      cause: error,
    });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new LettoError(`Permission denied: ${message}`, {
      hint: 'Run letto-update as root or as the service user that owns the WAR.',
      cause: error,
    });
  }
  return new InternalError(message, error);
}

/**
 * Runs `step`, turning a full disk (ENOSPC, also when a library wrapped it as `cause`) into a
 * LettoError that names `where` and says what was left as it was.
 * @param where e.g. "while downloading into /opt/letto/war". @param kept e.g. "Nothing was changed."
 */
export async function explainDiskFull<T>(where: string, kept: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    let cause: unknown = error;
    while (cause instanceof Error && (cause as NodeJS.ErrnoException).code !== 'ENOSPC' && cause.cause !== undefined) cause = cause.cause;
    if ((cause as NodeJS.ErrnoException | undefined)?.code !== 'ENOSPC') throw error;
    throw new LettoError(`The disk is full ${where}. ${kept}`, {
      hint: 'Free space on that file system (old backups, TomEE logs), then run again.',
      cause: error,
    });
  }
}
