import { createTransport } from 'nodemailer';

/** How mail leaves this machine: an SMTP server (smtp:// or smtps://) or the local sendmail. */
export type MailRoute =
  | { kind: 'smtp'; url: string; user: string; password: string | null }
  | { kind: 'sendmail'; path: string };

/** One plain-text mail. */
export interface MailMessage {
  from: string;
  to: string[];
  subject: string;
  text: string;
}

/**
 * Sends `message` through nodemailer. `smtp://host[:port]` talks plain SMTP on port 587 (default) and
 * upgrades with STARTTLS when the server offers it; `smtps://host[:port]` is TLS from the start (port 465).
 * Credentials come from `route.user`/`route.password`, else from the URL's user info. Nodemailer's
 * logger stays off, so no credential is ever written anywhere.
 *
 * @param timeoutSeconds connecting, the greeting and every later answer each get this long.
 * @throws Error with a message free of credentials (the server's answer, or the network error).
 */
export async function sendMail(route: MailRoute, message: MailMessage, timeoutSeconds = 30): Promise<void> {
  const transport =
    route.kind === 'sendmail'
      ? createTransport({ sendmail: true, path: route.path, newline: 'unix' })
      : createTransport(smtpOptions(route, timeoutSeconds));
  try {
    await transport.sendMail({ from: message.from, to: message.to, subject: message.subject, text: message.text });
  } catch (error) {
    const secret = route.kind === 'smtp' ? route.password : null;
    const text = error instanceof Error ? error.message : String(error);
    throw new Error(secret ? text.split(secret).join('***') : text);
  } finally {
    transport.close();
  }
}

function smtpOptions(route: Extract<MailRoute, { kind: 'smtp' }>, timeoutSeconds: number) {
  const url = new URL(route.url);
  const secure = url.protocol === 'smtps:';
  const user = route.user || decodeURIComponent(url.username);
  const password = route.password ?? (url.password ? decodeURIComponent(url.password) : null);
  const ms = timeoutSeconds * 1000;
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    ...(user ? { auth: { user, pass: password ?? '' } } : {}),
    connectionTimeout: ms,
    greetingTimeout: ms,
    socketTimeout: ms,
    logger: false,
    debug: false,
  };
}

/** `smtp://user:secret@host:587` → `smtp://host:587`: for messages. */
export function describeMailRoute(route: MailRoute): string {
  if (route.kind === 'sendmail') return `sendmail (${route.path})`;
  const url = new URL(route.url);
  return `${url.protocol}//${url.host}`;
}
