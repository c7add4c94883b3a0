/**
 * What the command modules share: opening a session with the global flags, signal handling, the
 * confirmation prompt and turning an update/rollback report into output and an exit code.
 * Loaded only by commands that open a session (never by `--version` or `--help`).
 */
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { adapterFor } from '../kinds/index.js';
import { Output } from '../report/output.js';
import type { Channel } from '../revision.js';
import { openSession, type Access, type Session } from '../config/session.js';
import type { RunReport } from '../runbook/update.js';
import type { CommandRun } from './types.js';

/** Exit code of an update/rollback report (see README, "Exit codes"). */
export function exitCodeOf(report: RunReport): number {
  switch (report.result) {
    case 'updated':
    case 'current':
    case 'skipped':
    case 'dry-run':
    case 'recovered':
      return ExitCode.ok;
    case 'rolled-back':
      return ExitCode.rolledBack;
    case 'rollback-failed':
      return ExitCode.rollbackFailed;
    default:
      return ExitCode.failed;
  }
}

/**
 * Ctrl-C, SIGTERM and SIGHUP: before TomEE is stopped the run ends at once (exit 130; a partial
 * download and the run lock are cleaned up by the next run). While TomEE is stopped or restarting,
 * the signal is held back so the run can finish or undo what it started: leaving LeTTo down is worse.
 */
function guardSignals(out: Output): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (out.critical) {
        out.notice(`${signal} received while TomEE is being restarted; ${out.criticalNote}`);
        out.stopRequest.abort(signal);
        return;
      }
      out.notice(`${signal} received; ${out.stopNote}`);
      process.exit(130);
    });
  }
}

/**
 * A command that may change the install loads, before it starts, every module it can still need: the
 * adapter's steps (Adapter.load), the download client (the health check after a swap goes through it
 * behind a proxy) and, when mail is configured, the mailer. The bundle's chunks have content hashes in
 * their names, so a package upgrade during a long run would otherwise take them away half-way.
 */
async function loadRunModules(ctx: Context): Promise<void> {
  await Promise.all([
    adapterFor(ctx).load(),
    import('../system/http.js'),
    import('../system/undici.js').then((u) => u.importUndici()),
    ctx.config.notify.email_to.length > 0 ? import('../system/mail.js') : null,
  ]);
}

/**
 * Opens a session (config, password, service user) with the global flags of `run`, hands it and an
 * {@link Output} to `body`, and closes the session afterwards. The Output is handed to the CLI first
 * (`run.adopt`) so that an error thrown anywhere is printed the same way.
 */
export async function withSession(
  run: CommandRun,
  access: Access,
  channel: Channel | undefined,
  body: (session: Session, out: Output) => Promise<number>,
  extra: { cron?: boolean; local?: boolean } = {},
): Promise<number> {
  const { globals } = run;
  const out = new Output({ json: Boolean(globals.json), quiet: Boolean(globals.quiet), verbose: Boolean(globals.verbose), cron: Boolean(extra.cron) });
  run.adopt(out);
  guardSignals(out);
  const session = await openSession({
    ...(globals.config ? { configPath: globals.config } : {}),
    flags: channel ? { channel } : {},
    access,
    ...(extra.local ? { local: true } : {}),
    ...(extra.cron ? { patient: true } : {}),
    emit: out.onEvent,
  });
  try {
    if (access === 'write') await loadRunModules(session.ctx);
    return await body(session, out);
  } finally {
    await session.close();
  }
}

/** The yes/no question before an update or rollback; undefined (no question) with --yes, --json or without a terminal. */
export function confirmer(out: Output, yes: boolean | undefined): ((question: string) => Promise<boolean>) | undefined {
  if (yes || out.mode.json || !process.stdin.isTTY || !process.stdout.isTTY) return undefined;
  return async (question) => {
    const { createInterface } = await import('node:readline/promises');
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try {
      return /^(y|yes|j|ja)$/i.test((await rl.question(`${question} [y/N] `)).trim());
    } finally {
      rl.close();
    }
  };
}

/** Prints an update/rollback/recover report and returns its exit code. */
export function finish(out: Output, report: RunReport): number {
  const code = exitCodeOf(report);
  out.json({ ...report, exitCode: code });
  if (code === ExitCode.ok || report.result === 'cancelled') out.line(report.message);
  else if (!out.mode.json) out.error(report.message, report.hint ?? ''); // the JSON report carries message and hint
  return code;
}

/**
 * `update --cron`: nothing at all when there was nothing to do (no new revision, or only the one that
 * failed before) and nothing went wrong; else the collected steps as a short time-stamped log, the
 * result last (errors on stderr). Exit codes as without --cron.
 */
export function finishCron(out: Output, report: RunReport): number {
  const code = exitCodeOf(report);
  out.json({ ...report, exitCode: code });
  if ((report.result === 'current' || report.result === 'skipped') && !out.warned) return code;
  if (code === ExitCode.ok) {
    out.flushLog(`${report.result}: ${report.message} (${report.from ?? '?'} → ${report.to ?? '?'}, ${report.durationSeconds} s)`);
  } else {
    out.flushLog();
    if (!out.mode.json) out.error(report.message, report.hint ?? '');
  }
  return code;
}
