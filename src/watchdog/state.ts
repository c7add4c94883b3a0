import { localTime } from '../time.js';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Context } from '../context.js';
import { writeFileAtomically } from '../system/files.js';

/**
 * The watchdog's counters, in `<state>/watchdog.json`. Times are ISO 8601 (UTC).
 * `failures`: failed checks in a row (reset by a healthy check and by a restart).
 */
export interface WatchdogCounters {
  failures: number;
  lastCheck: string | null;
  lastRestart: string | null;
  /** What the last check decided (see WatchdogAction). */
  lastAction: string | null;
}

/**
 * A maintenance pause, `<state>/watchdog-paused`: while it exists (and `until` has not passed) the
 * watchdog checks nothing and restarts nothing, and `health` reports a down LeTTo as WARNING. Written
 * by `watchdog pause` as JSON; an empty file (`touch`) is a pause without end.
 */
export interface WatchdogPause {
  since: string;
  /** ISO time the pause ends by itself, or null (until `watchdog resume`). */
  until: string | null;
  reason: string;
}

/** `since 2026-11-21 04:00:00 CET until … (reason)` (local times): a pause for status lines and the watchdog's log. */
export function describePause(pause: WatchdogPause): string {
  return `since ${localTime(pause.since)}${pause.until ? ` until ${localTime(pause.until)}` : ''}${pause.reason ? ` (${pause.reason})` : ''}`;
}

const countersFile = (ctx: Context) => join(ctx.state.dir, 'watchdog.json');
/** Path of the maintenance pause file. */
export const pauseFile = (ctx: Context) => join(ctx.state.dir, 'watchdog-paused');

/** The stored counters (zeros when none are stored yet). */
export async function readCounters(ctx: Context): Promise<WatchdogCounters> {
  try {
    const parsed = JSON.parse(await readFile(countersFile(ctx), 'utf8')) as Partial<WatchdogCounters>;
    return {
      failures: typeof parsed.failures === 'number' ? parsed.failures : 0,
      lastCheck: parsed.lastCheck ?? null,
      lastRestart: parsed.lastRestart ?? null,
      lastAction: parsed.lastAction ?? null,
    };
  } catch {
    return { failures: 0, lastCheck: null, lastRestart: null, lastAction: null };
  }
}

/** Stores the counters (atomically, owned by the service user). */
export async function writeCounters(ctx: Context, counters: WatchdogCounters): Promise<void> {
  await ctx.state.ensure();
  await writeFileAtomically(countersFile(ctx), JSON.stringify(counters, null, 2) + '\n', ctx.serviceUser);
}

/** The active maintenance pause, or null (none, or its `until` has passed). */
export async function readPause(ctx: Context): Promise<WatchdogPause | null> {
  const file = pauseFile(ctx);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  let pause: WatchdogPause;
  try {
    const parsed = JSON.parse(text) as Partial<WatchdogPause>;
    pause = { since: parsed.since ?? '?', until: parsed.until ?? null, reason: parsed.reason ?? '' };
  } catch {
    // `touch watchdog-paused`, or a hand-written reason
    const since = await stat(file).then((s) => s.mtime.toISOString(), () => '?');
    pause = { since, until: null, reason: text.trim().split('\n')[0] ?? '' };
  }
  if (pause.until && Date.parse(pause.until) <= ctx.services.clock.now().getTime()) return null;
  return pause;
}

/** Writes the pause file. @param seconds the pause ends by itself after this long (null: never). */
export async function writePause(ctx: Context, reason: string, seconds: number | null): Promise<WatchdogPause> {
  const now = ctx.services.clock.now();
  const pause: WatchdogPause = { since: now.toISOString(), until: seconds === null ? null : new Date(now.getTime() + seconds * 1000).toISOString(), reason };
  await ctx.state.ensure();
  await writeFileAtomically(pauseFile(ctx), JSON.stringify(pause, null, 2) + '\n', ctx.serviceUser);
  return pause;
}

/** Removes the pause file. @returns whether there was one. */
export async function removePause(ctx: Context): Promise<boolean> {
  const existed = await stat(pauseFile(ctx)).then(() => true, () => false);
  await rm(pauseFile(ctx), { force: true });
  return existed;
}
