import parse from 'parse-duration';

/**
 * Parses a duration as admins write it (`30m`, `1h30m`, `90s`, `2h`, `1.5h`; a bare number is seconds)
 * with the parse-duration library.
 * @returns whole seconds (≥ 0), or null when `text` is not a duration.
 */
export function parseDurationSeconds(text: string): number | null {
  const trimmed = text.trim();
  if (!trimmed) return null;
  const seconds = /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : parse(trimmed, 's');
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return null;
  return Math.round(seconds);
}
