/**
 * The environment variables that hold letto-update's passwords (see docs/configuration.md): never
 * handed to a child process (TomEE's scripts, docker, compose), and taken out of every log tail.
 */

/** `LETTO_UPDATE_PASSWORD` (the download server's), `LETTO_UPDATE_SMTP_PASSWORD` (the mail server's). */
export const SECRET_VARIABLES: readonly string[] = ['LETTO_UPDATE_PASSWORD', 'LETTO_UPDATE_SMTP_PASSWORD'];

/** `env` (default: this process's) without {@link SECRET_VARIABLES} and without unset entries: a child's environment. */
export function withoutSecrets(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && !SECRET_VARIABLES.includes(key)) out[key] = value;
  return out;
}

/** The values of {@link SECRET_VARIABLES} set in `env` (default: this process's), for redaction. */
export function environmentSecrets(env: NodeJS.ProcessEnv = process.env): string[] {
  return SECRET_VARIABLES.map((name) => env[name] ?? '').filter(Boolean);
}
