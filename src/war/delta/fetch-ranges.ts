/**
 * Fetches byte ranges of the remote WAR into the delta download's data file. The ranges go out in
 * multipart batches (one request for up to {@link MAX_RANGES} ranges, answered as
 * `multipart/byteranges`), a few batches at a time on kept-alive connections: for the benchmark's 211
 * ranges three requests took 0.22 s where single ranges one after another took 0.54 s
 * (docs/performance.md). A server that answers several ranges with 200 (the whole file, dropped unread),
 * with one part, or with something unreadable, gets the rest as single-range requests. Every request is
 * guarded by `If-Range`, every part checked for the same file (validators, length) and the asked bytes.
 * Each chunk is written at its offset and then recorded in the log, so a kill loses at most the chunk
 * being written.
 */
import type { HttpClient, Validators } from '../../system/http.js';
import type { DeltaFiles } from './delta-state.js';
import { writeAll } from './entry-data.js';
import { subtract, type Interval } from './intervals.js';

/** Requests in flight at once (node-transport's agent keeps up to 4 connections per host). */
export const PARALLEL = 4;
/** Ranges in one request: far inside Apache's MaxRanges (200) and its 8 KiB limit on a header line. */
export const MAX_RANGES = 100;
/** Bytes asked for in one multipart request (a request of more ranges than this is split). */
export const MAX_BATCH_BYTES = 32 * 1024 * 1024;

/** What fetching gave: bytes received, or why the server's answers cannot be used. */
export type Fetched = ({ ok: true } | { ok: false; reason: string }) & {
  bytes: number;
  requests: number;
  /** Why the server was asked for one range at a time after all (it did not answer several usefully), or null. */
  singleRanges: string | null;
};

/**
 * The requests for `ranges` (sorted, disjoint): batches of at most {@link MAX_RANGES} ranges and
 * {@link MAX_BATCH_BYTES} bytes, no two ranges of a batch touching (servers merge those).
 */
export function batches(ranges: readonly Interval[]): Interval[][] {
  const out: Interval[][] = [];
  let bytes = 0;
  for (const range of ranges) {
    const batch = out[out.length - 1];
    const last = batch?.[batch.length - 1];
    if (!batch || !last || batch.length >= MAX_RANGES || bytes + (range.end - range.start) > MAX_BATCH_BYTES || range.start <= last.end) {
      out.push([range]);
      bytes = range.end - range.start;
    } else {
      batch.push(range);
      bytes += range.end - range.start;
    }
  }
  return out;
}

/**
 * Fetches `requests` (sorted, disjoint intervals, each far below any server's limit) from `url`.
 * @param onBytes told the bytes received so far (for progress).
 * @throws DownloadError when the network fails beyond the retries (what is written stays recorded).
 */
export async function fetchRanges(http: HttpClient, url: string, expect: Validators, requests: readonly Interval[], files: DeltaFiles, onBytes?: (bytes: number) => void): Promise<Fetched> {
  let bytes = 0;
  let sent = 0;
  let refused: string | null = null;
  /** Whether the server answers several ranges in one multipart answer (until it shows it does not). */
  let multipart = true;
  const queue = batches(requests);
  const controller = new AbortController();
  const onData = async (chunk: Buffer, position: number) => {
    await writeAll(files.data, chunk, position);
    files.fetched(position, position + chunk.length);
    bytes += chunk.length;
    onBytes?.(bytes);
  };
  const single = async (range: Interval): Promise<void> => {
    sent++;
    const answer = await http.readRange(url, { start: range.start, end: range.end - 1 }, { expect, signal: controller.signal, onData });
    if (!answer.ok) refused ??= answer.reason;
    else if (answer.total !== expect.total) refused ??= `the WAR's length changed on the server (${expect.total} → ${answer.total} bytes)`;
  };
  const worker = async (): Promise<void> => {
    for (let batch = queue.shift(); batch && refused === null; batch = queue.shift()) {
      if (batch.length === 1 || !multipart) {
        for (const range of batch) if (refused === null) await single(range);
        continue;
      }
      sent++;
      const got: Interval[] = [];
      const answer = await http.readRanges(url, batch.map((r) => ({ start: r.start, end: r.end - 1 })), {
        expect,
        signal: controller.signal,
        onData: async (chunk, position) => {
          await onData(chunk, position);
          got.push({ start: position, end: position + chunk.length });
        },
      });
      if (answer.ok) continue;
      if (answer.fallback === 'full') {
        refused ??= answer.reason;
      } else {
        // this server answers one range at a time: the rest of this batch, and every batch after it
        multipart = false;
        singleRanges ??= answer.reason;
        queue.unshift(...subtract(batch, got).map((r) => [r]));
        start();
      }
    }
  };
  let singleRanges: string | null = null;
  // up to PARALLEL workers; more are started when a batch turns into single ranges
  const workers: Array<Promise<void>> = [];
  let active = 0;
  const start = () => {
    while (active < PARALLEL && active < queue.length) {
      active++;
      const running = worker()
        .finally(() => active--)
        .catch((error: unknown) => {
          // the first failure stops the other workers
          if (!controller.signal.aborted) controller.abort(error);
          throw error;
        });
      running.catch(() => undefined); // handled below (allSettled), also when it fails before being awaited
      workers.push(running);
    }
  };
  start();
  // all have ended before this returns (files stay open until then)
  let ended: Array<PromiseSettledResult<void>> = [];
  while (ended.length < workers.length) ended = await Promise.allSettled([...workers]);
  if (ended.some((e) => e.status === 'rejected')) throw controller.signal.reason;
  const result = { bytes, requests: sent, singleRanges };
  return refused === null ? { ok: true, ...result } : { ok: false, reason: refused, ...result };
}
