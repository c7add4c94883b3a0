import { localTime } from '../time.js';
import type { Context } from '../context.js';
import type { RunRecord } from '../store/state.js';

/**
 * `history`: every recorded run (update, rollback, watchdog restart) from `<state>/runs.jsonl`,
 * oldest first: time (ISO 8601, UTC), command, from, to, result, duration (seconds), message.
 * @param last only the newest `last` runs (undefined: all).
 */
export async function runHistory(ctx: Context, last?: number): Promise<RunRecord[]> {
  const runs = await ctx.state.runs();
  return last === undefined ? runs : runs.slice(-last);
}

/**
 * One aligned line per run for humans: `2026-11-21 03:15:02 CET  update    6880 → 6886  updated  48.2 s` (local time, as `status` shows it),
 * followed by `database restored` / `database left alone` when a rollback or recovery decided about LeTTo's databases.
 */
export function formatHistory(runs: RunRecord[]): string[] {
  if (runs.length === 0) return [];
  const times = runs.map((run) => localTime(run.time));
  const width = Math.max(4, ...times.map((t) => t.length));
  const header = `${'time'.padEnd(width)}  ${'command'.padEnd(8)}  ${'from → to'.padEnd(13)}  ${'result'.padEnd(15)}  duration`;
  return [header, ...runs.map((run, i) => {
    const time = times[i]!.padEnd(width);
    const revisions = run.command === 'watchdog' ? `${run.to ?? '?'}` : `${run.from ?? '?'} → ${run.to ?? '?'}`;
    const database = run.database ? `  database ${run.database}` : '';
    return `${time}  ${run.command.padEnd(8)}  ${revisions.padEnd(13)}  ${run.result.padEnd(15)}  ${run.durationSeconds.toFixed(1).padStart(6)} s${database}`;
  })];
}
