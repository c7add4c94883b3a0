/**
 * Byte intervals of a file, half-open `[start, end)`, kept sorted and disjoint. The delta download
 * plans with them: what the new WAR needs, what is already on disk, what to request.
 */

/** `[start, end)` in bytes. */
export interface Interval {
  start: number;
  end: number;
}

/** The union of `intervals`, sorted, with touching or overlapping ones merged. */
export function union(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter((i) => i.end > i.start).sort((a, b) => a.start - b.start);
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i.start <= last.end) last.end = Math.max(last.end, i.end);
    else out.push({ ...i });
  }
  return out;
}

/** The bytes of `from` that are in none of `minus`. */
export function subtract(from: readonly Interval[], minus: readonly Interval[]): Interval[] {
  const cut = union(minus);
  const out: Interval[] = [];
  for (const piece of union(from)) {
    let at = piece.start;
    for (const c of cut) {
      if (c.end <= at) continue;
      if (c.start >= piece.end) break;
      if (c.start > at) out.push({ start: at, end: c.start });
      at = Math.max(at, c.end);
      if (at >= piece.end) break;
    }
    if (at < piece.end) out.push({ start: at, end: piece.end });
  }
  return out;
}

/** Total bytes in `intervals` (assumed disjoint). */
export function size(intervals: readonly Interval[]): number {
  return intervals.reduce((sum, i) => sum + (i.end - i.start), 0);
}

/** Whether `[start, end)` lies wholly inside `intervals`. */
export function covers(intervals: readonly Interval[], start: number, end: number): boolean {
  return subtract([{ start, end }], intervals).length === 0;
}

/**
 * The requests for `needed` (sorted, disjoint): neighbours closer than `gap` bytes become one request
 * (the bytes between are fetched as well, but not twice: they are marked done like the rest), and no
 * request is longer than `maxLength` bytes, so that a failed request costs little and progress is
 * recorded often.
 */
export function coalesce(needed: readonly Interval[], gap: number, maxLength: number): Interval[] {
  const merged: Interval[] = [];
  for (const i of union(needed)) {
    const last = merged[merged.length - 1];
    if (last && i.start - last.end <= gap) last.end = i.end;
    else merged.push({ ...i });
  }
  const out: Interval[] = [];
  for (const m of merged) {
    for (let at = m.start; at < m.end; at += maxLength) out.push({ start: at, end: Math.min(m.end, at + maxLength) });
  }
  return out;
}
