import { localTime } from '../time.js';
import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { readSecretFile, type Config } from '../config/config.js';
import { catalinaOut, type Context } from '../context.js';
import { BusyError, ExitCode, LettoError } from '../errors.js';
import type { Revision } from '../revision.js';
import type { RunRecord } from '../store/state.js';
import type { MailRoute } from '../system/mail.js';
import { postJson } from '../system/webhook.js';
import { environmentSecrets, redactSecrets, type LogTail } from '../system/log-tail.js';
import { elapsedSeconds } from '../time.js';

/** What happened, as told to the admin: one finished update, rollback or watchdog restart. */
export interface Notice {
  command: RunRecord['command'];
  result: string;
  from: Revision | null;
  to: Revision | null;
  /** Seconds the run took. */
  durationSeconds: number;
  message: string;
  hint?: string;
  /** Log lines of what failed (a Docker install: `docker logs` of the services that failed their health check). */
  log?: LogTail;
}

/** Results that are failures: told with `when = "error"`, and with a log tail (catalina.out, or the failed containers' `docker logs`). */
const FAILURES = new Set(['failed', 'rolled-back', 'rollback-failed', 'restarted', 'restart-failed']);
/** Results that change the server: told with `when = "change"` (the default), besides failures. */
const CHANGES = new Set(['updated']);

/**
 * Whether `notice` is sent with `notify.when`: `always` every run (no-ops included), `change` every
 * update, failed update, rollback and watchdog restart, `error` failures and watchdog restarts only.
 */
export function shouldNotify(when: Config['notify']['when'], notice: Pick<Notice, 'result'>): boolean {
  if (when === 'always') return true;
  if (FAILURES.has(notice.result)) return true;
  return when === 'change' && CHANGES.has(notice.result);
}

/** True when `[notify]` names any recipient (mail or webhook). */
export function notifyConfigured(config: Config): boolean {
  return config.notify.email_to.length > 0 || config.notify.webhook_url !== '';
}

/**
 * Tells the admin about `notice` by mail (`notify.email_to` through `notify.smtp_url` or the local
 * sendmail) and/or a JSON POST to `notify.webhook_url`, if `notify.when` asks for it. Never throws:
 * a failing mail server or webhook is reported as a `warn` event and changes nothing else (the exit
 * code of the run stays what it was).
 */
export async function notify(ctx: Context, notice: Notice): Promise<void> {
  if (!notifyConfigured(ctx.config) || !shouldNotify(ctx.config.notify.when, notice)) return;
  for (const failure of await deliver(ctx, notice)) {
    ctx.emit({ type: 'warn', message: `${failure}; the run itself is not affected.` });
  }
}

/**
 * `test-notify`: sends a test notice by every configured way, whatever `notify.when` says.
 * @returns what was tried (`mail to a@b via smtp://host:587`, `webhook https://host`) and the failures.
 */
export async function sendTestNotice(ctx: Context): Promise<{ tried: string[]; failures: string[] }> {
  const { notify: settings } = ctx.config;
  const tried: string[] = [];
  if (settings.email_to.length > 0) tried.push(`mail to ${settings.email_to.join(', ')}`);
  if (settings.webhook_url) tried.push(`webhook ${new URL(settings.webhook_url).origin}`);
  const failures = await deliver(ctx, {
    command: 'update',
    result: 'test',
    from: null,
    to: null,
    durationSeconds: 0,
    message: 'This is a test notification from letto-update (`letto-update test-notify`). Mail and webhook work.',
  });
  return { tried, failures };
}

/** Sends `notice` by mail and webhook as configured. @returns one message per way that failed (never throws). */
async function deliver(ctx: Context, notice: Notice): Promise<string[]> {
  const { notify: settings } = ctx.config;
  const failures: string[] = [];
  const host = hostname();
  const failure = FAILURES.has(notice.result);
  const tail = failure ? await failureLog(ctx.config, notice) : null;
  const { log: _log, ...told } = notice;
  const time = ctx.services.clock.now().toISOString();
  if (settings.email_to.length > 0) {
    let route: MailRoute | null = null;
    // nodemailer is loaded only when mail is configured (it costs memory in every run otherwise)
    const { describeMailRoute, sendMail } = await import('../system/mail.js');
    try {
      route = await mailRoute(ctx.config);
      await sendMail(route, {
        from: settings.email_from || `letto-update@${host}`,
        to: settings.email_to,
        subject: subjectOf(notice, host),
        text: bodyOf(notice, host, localTime(time), tail),
      });
    } catch (error) {
      const via = route ? ` via ${describeMailRoute(route)}` : '';
      failures.push(`The notification mail to ${settings.email_to.join(', ')}${via} could not be sent (${(error as Error).message})`);
    }
  }
  if (settings.webhook_url) {
    try {
      await postJson(settings.webhook_url, { host, time, ...told, failure, catalinaTail: ctx.config.docker ? null : (tail?.text ?? null), logTail: tail });
    } catch (error) {
      failures.push(`The notification ${(error as Error).message}`);
    }
  }
  return failures;
}

/**
 * Runs an update or rollback (`run`, which records itself) and sends the notice of how it ended: the
 * report it returned, or the LettoError it threw (as `busy`, `rollback-failed` for exit 4, else `failed`,
 * with the error's log lines when it carries any).
 * @returns/throws whatever `run` does.
 */
export async function notifyAfter<R extends Notice>(
  ctx: Context,
  command: Notice['command'],
  known: { from: Revision | null; to: Revision | null },
  run: () => Promise<R>,
): Promise<R> {
  const started = ctx.services.clock.now();
  try {
    const report = await run();
    if (report.result !== 'dry-run' && report.result !== 'cancelled') await notify(ctx, report);
    return report;
  } catch (error) {
    if (error instanceof LettoError) {
      await notify(ctx, {
        command,
        // exit 4: recovering an interrupted run failed, LeTTo may be down (not "nothing changed")
        result: error instanceof BusyError ? 'busy' : error.exitCode === ExitCode.rollbackFailed ? 'rollback-failed' : 'failed',
        from: known.from,
        to: known.to,
        durationSeconds: elapsedSeconds(ctx, started),
        message: error.message,
        ...(error.hint ? { hint: error.hint } : {}),
        ...(error.log ? { log: error.log } : {}),
      });
    }
    throw error;
  }
}

/** The mail route from `[notify]`: SMTP with the password from env/file/URL, else the local sendmail. */
async function mailRoute(config: Config): Promise<MailRoute> {
  const { smtp_url: url, smtp_user: user, smtp_password_file: file, sendmail } = config.notify;
  if (!url) return { kind: 'sendmail', path: sendmail };
  const password = process.env.LETTO_UPDATE_SMTP_PASSWORD || (file ? await readSecretFile(file, 'notify.smtp_password_file', { variable: 'LETTO_UPDATE_SMTP_PASSWORD' }) : null);
  return { kind: 'smtp', url, user, password };
}

const RESULT_WORDS: Record<string, string> = {
  updated: 'updated',
  current: 'nothing to do',
  skipped: 'skipped a revision that failed before',
  failed: 'FAILED (nothing changed)',
  busy: 'busy (backup or another run)',
  'rolled-back': 'FAILED, previous revision restored',
  'rollback-failed': 'FAILED, rollback failed too: LeTTo may be down',
  restarted: 'TomEE restarted by the watchdog',
  'restart-failed': 'watchdog restart FAILED: LeTTo is down',
  test: 'test notification',
};

/** `[letto-update] school.example: update 6880 -> 6886: updated` (ASCII, so filters and grep find it) */
export function subjectOf(notice: Notice, host: string): string {
  const revisions = notice.command === 'watchdog' ? `revision ${notice.to ?? 'unknown'}` : `${notice.from ?? '?'} -> ${notice.to ?? '?'}`;
  const result = notice.command === 'rollback' && notice.result === 'updated' ? 'done' : (RESULT_WORDS[notice.result] ?? notice.result);
  return `[letto-update] ${host}: ${notice.command} ${revisions}: ${result}`;
}

function bodyOf(notice: Notice, host: string, time: string, tail: LogTail | null): string {
  const lines = [
    `${notice.message}`,
    '',
    `host:     ${host}`,
    `time:     ${time}`,
    `command:  ${notice.command}`,
    `result:   ${notice.result}`,
    `from:     revision ${notice.from ?? 'unknown'}`,
    `to:       revision ${notice.to ?? 'unknown'}`,
    `duration: ${notice.durationSeconds} s`,
  ];
  if (notice.hint) lines.push('', `What to do: ${notice.hint}`);
  if (tail !== null) lines.push('', `Last lines of ${tail.source}:`, '', tail.text);
  lines.push('', '-- ', 'letto-update (history: letto-update history)');
  return lines.join('\n') + '\n';
}

/**
 * The log tail of a failure notice, passwords taken out ({@link redactSecrets}: the download and SMTP
 * passwords, `password=…`-like values): the one the run read (a Docker install's `docker logs` of the
 * services that failed their health check), else for TomEE the last 40 lines of catalina.out. A Docker
 * install has no catalina.out: without logs from the run, none (the hint names `docker logs`).
 */
async function failureLog(config: Config, notice: Notice): Promise<LogTail | null> {
  const found = notice.log ?? (config.docker ? null : { source: catalinaOut(config), text: await catalinaTail(catalinaOut(config)) });
  if (!found) return null;
  return { source: found.source, text: redactSecrets(found.text, await knownSecrets(config)) };
}

/** The passwords this run knows of: from the environment, `server.password_file` and `notify.smtp_password_file` (unreadable ones left out). */
async function knownSecrets(config: Config): Promise<string[]> {
  const secrets = environmentSecrets();
  for (const [file, key] of [[config.server.password_file, 'server.password_file'], [config.notify.smtp_password_file, 'notify.smtp_password_file']] as const) {
    if (file) secrets.push((await readSecretFile(file, key, { optional: true }).catch(() => null)) ?? '');
  }
  try {
    const password = config.notify.smtp_url ? new URL(config.notify.smtp_url).password : '';
    if (password) secrets.push(decodeURIComponent(password));
  } catch {
    // not a URL: no password in it
  }
  return secrets.filter(Boolean);
}

/**
 * The last `lines` lines of catalina.out (which can grow to gigabytes: only its last 64 KiB are read).
 * @returns the text, or a note when the file cannot be read.
 */
export async function catalinaTail(path: string, lines = 40): Promise<string> {
  const maxBytes = 64 * 1024;
  try {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, maxBytes);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      const text = buffer.toString('utf8').split('\n');
      if (size > length) text.shift(); // a cut first line
      return text.slice(-lines - 1).join('\n').trimEnd();
    } finally {
      await handle.close();
    }
  } catch (error) {
    return `(cannot read ${path}: ${(error as Error).message})`;
  }
}
