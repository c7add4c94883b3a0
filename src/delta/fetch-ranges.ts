/**
 * Fetches byte ranges of the remote WAR into the delta download's data file: single-range requests,
 * sorted, a few at a time on kept-alive connections (measured against one multipart request in
 * docs/performance.md), each guarded by `If-Range` and checked for the same file (validators, length).
 * Each chunk is written at its offset and then recorded in the log, so a kill loses at most the chunk
 * being written.
 */
import type { HttpClient, Validators } from '../system/http.js';
import type { DeltaFiles } from './delta-state.js';
import { writeAll } from './entry-data.js';
import type { Interval } from './intervals.js';

/** Requests in flight at once (node-transport's agent keeps up to 4 connections per host). */
export const PARALLEL = 4;

/** What fetching gave: bytes received, or why the server's answers cannot be used. */
export type Fetched = { ok: true; bytes: number; requests: number } | { ok: false; reason: string; bytes: number; requests: number };

/**
 * Fetches `requests` (sorted, disjoint, each far below any server's limit) from `url`.
 * @param onBytes told the bytes received so far (for progress).
 * @throws DownloadError when the network fails beyond the retries (what is written stays recorded).
 */
export async function fetchRanges(http: HttpClient, url: string, expect: Validators, requests: readonly Interval[], files: DeltaFiles, onBytes?: (bytes: number) => void): Promise<Fetched> {
  let bytes = 0;
  let sent = 0;
  let refused: string | null = null;
  const queue = [...requests];
  const controller = new AbortController();
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next && refused === null; next = queue.shift()) {
      sent++;
      const answer = await http.readRange(url, { start: next.start, end: next.end - 1 }, {
        expect,
        signal: controller.signal,
        onData: async (chunk, position) => {
          await writeAll(files.data, chunk, position);
          files.fetched(position, position + chunk.length);
          bytes += chunk.length;
          onBytes?.(bytes);
        },
      });
      if (!answer.ok) refused ??= answer.reason;
      else if (answer.total !== expect.total) refused ??= `the WAR's length changed on the server (${expect.total} → ${answer.total} bytes)`;
    }
  };
  // the first failure stops the other workers; all have ended before this returns (files stay open until then)
  const ended = await Promise.allSettled(
    Array.from({ length: Math.min(PARALLEL, requests.length) }, () =>
      worker().catch((error: unknown) => {
        if (!controller.signal.aborted) controller.abort(error);
        throw error;
      }),
    ),
  );
  if (ended.some((e) => e.status === 'rejected')) throw controller.signal.reason;
  return refused === null ? { ok: true, bytes, requests: sent } : { ok: false, reason: refused, bytes, requests: sent };
}
