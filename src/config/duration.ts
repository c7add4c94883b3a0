import parse from 'parse-duration';

/**
 * Parses a duration as admins write it, the one way for every duration letto-update reads (config keys
 * such as `tomee.health_timeout`, their `LETTO_UPDATE_*` variables, `--random-delay`, `--for`,
 * `health --timeout`): `30m`, `1h30m`, `90s`, `2 hours`, `1.5h`, `500ms`; a bare number (`600`, `0.5`)
 * is seconds, as systemd reads it. Parsing is the parse-duration library's.
 * @returns seconds (≥ 0, may have a fraction), or null when `text` is not a duration.
 */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  if (!trimmed) return null;
  const seconds = /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : parse(trimmed, 's');
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return null;
  return seconds;
}

/** {@link parseDuration} rounded to whole seconds (`--random-delay`, `--for`); null when not a duration. */
export function parseDurationSeconds(text: string): number | null {
  const seconds = parseDuration(text);
  return seconds === null ? null : Math.round(seconds);
}

/** How a duration is written in messages: the forms {@link parseDuration} takes. */
export const DURATION_FORMS = 'a number of seconds or a duration like "90s", "5m" or "1h30m"';
