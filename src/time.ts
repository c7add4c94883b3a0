/**
 * Times for people: local time with the zone, as `journalctl -o short-full` shows them
 * (`2026-11-21 03:15:02 CET`). JSON output, runs.jsonl and the journal keep ISO 8601 in UTC.
 */
import type { Context } from './context.js';

/**
 * `2026-11-21 03:15:02 CET` (the zone's abbreviation where the runtime has one, else its offset,
 * `+05:30`) for a Date or an ISO 8601 string; an unreadable string is returned as it was.
 */
export function localTime(time: Date | string): string {
  const date = typeof time === 'string' ? new Date(time) : time;
  if (Number.isNaN(date.getTime())) return String(time);
  const pad = (n: number) => String(n).padStart(2, '0');
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const clock = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  return `${day} ${clock} ${zoneOf(date)}`;
}

/** `CET`, `UTC`, or the offset (`+05:30`, `-04:00`) when the runtime names the zone only as `GMT+5:30`. */
function zoneOf(date: Date): string {
  const name = new Intl.DateTimeFormat('en-GB', { timeZoneName: 'short' }).formatToParts(date).find((p) => p.type === 'timeZoneName')?.value ?? '';
  if (/^[A-Z]{2,5}$/.test(name)) return name;
  const offset = -date.getTimezoneOffset();
  const abs = Math.abs(offset);
  return `${offset < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** Seconds since `started`, one decimal. */
export function elapsedSeconds(ctx: Context, started: Date): number {
  return Math.round((ctx.services.clock.now().getTime() - started.getTime()) / 100) / 10;
}
