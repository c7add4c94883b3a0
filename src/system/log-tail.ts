/**
 * The log lines a failure notification carries (TomEE: catalina.out's tail; Docker: `docker logs` of
 * the services that failed their health check), bounded in size and with passwords taken out: a mail
 * or chat message is read by more people, and kept longer, than the server's own logs.
 */

/** Log lines for a notification: where they come from (one line) and the text. */
export interface LogTail {
  /** e.g. `docker logs --tail 40 of lettoserver (container letto-lettoserver-1: unhealthy)`, or catalina.out's path. */
  source: string;
  text: string;
}

/** What a secret is replaced by. */
export const REDACTED = '********';

/** Names of settings and variables whose values are secrets (`MYSQL_ROOT_PASSWORD`, `api_key`, `token`, …). */
export const SECRET_NAME = /pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|private[_-]?key|credential/i;

/** `password=…`, `"secret": "…"`, `token: …` in a log line: the name kept, the value replaced. */
const SECRET_ASSIGNMENT = new RegExp(`((?:[\\w.-]*)(?:${SECRET_NAME.source})[\\w.-]*["']?\\s*[:=]\\s*["']?)([^\\s"',;&]+)`, 'gi');
/** `scheme://user:password@host`: the password replaced. */
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/]+:)[^\s@/]+@/gi;

/**
 * Takes passwords out of `text`: every occurrence of a known secret (at least 4 characters; shorter
 * ones would hide ordinary words), values assigned to secret-looking names, and passwords in URLs.
 */
export function redactSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  const known = [...new Set([...secrets].filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
  for (const secret of known) out = out.split(secret).join(REDACTED);
  return out.replace(SECRET_ASSIGNMENT, `$1${REDACTED}`).replace(URL_USERINFO, `$1${REDACTED}@`);
}

/**
 * The last `lines` lines of `text`, each cut to `lineChars` characters, and at most `maxChars` in all
 * (whole lines, the newest kept).
 */
export function boundTail(text: string, lines: number, lineChars = 500, maxChars = 8 * 1024): string {
  const kept: string[] = [];
  let size = 0;
  for (const line of text.split(/\r?\n/).slice(-lines).reverse()) {
    const cut = line.length > lineChars ? `${line.slice(0, lineChars)} […]` : line;
    if (size + cut.length + 1 > maxChars) break;
    kept.unshift(cut);
    size += cut.length + 1;
  }
  return kept.join('\n').trimEnd();
}

/** The secrets this process knows from its environment (the download and SMTP passwords), for {@link redactSecrets}. */
export { environmentSecrets } from './secret-env.js';
