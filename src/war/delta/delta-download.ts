/**
 * The delta download (`server.delta`): assembles the new WAR in staging from the entries already on
 * this machine and Range requests for the rest, instead of fetching the whole file. Steps:
 * 1. read the remote central directory (remote-directory.ts), or the one an earlier, interrupted run
 *    left in `letto-<rev>.war.delta` (delta-state.ts);
 * 2. match its entries against the local zips (local-sources.ts): same CRC-32, sizes and method;
 * 3. plan: every byte of the new WAR that is neither on disk yet nor the data of a reused entry is
 *    requested, in coalesced, sorted ranges, several per request (intervals.ts, fetch-ranges.ts), while the reused entries are copied
 *    and checked (copy-entries.ts). A reused entry's data is placed after a local header as long as
 *    the one in the local zip it comes from; when the fetched header says otherwise, a second round
 *    puts it right;
 * 4. check every entry of the result (check-assembled.ts) and hash it.
 * Whenever it cannot do this it says why, in one line, and the caller downloads the whole file.
 */
import type { Context } from '../../context.js';
import { DownloadError } from '../../errors.js';
import type { Revision } from '../../revision.js';
import { hashFile, type Validators } from '../../system/http.js';
import type { FollowedScan } from '../follow.js';
import { checkAssembled, localHeader } from './check-assembled.js';
import { copyEntries, guessDataStarts, type CopyJob } from './copy-entries.js';
import { DeltaFiles, deltaPaths, discardDelta, readDelta } from './delta-state.js';
import { writeAll } from './entry-data.js';
import { fetchRanges } from './fetch-ranges.js';
import { coalesce, covers, size, subtract, union, type Interval } from './intervals.js';
import { findLocalSources, intactCheck, matchEntries, type LocalMatch } from './local-sources.js';
import { directoryFromBytes, readRemoteDirectory } from './remote-directory.js';
import { summarize, type TransferSummary } from './summary.js';
import type { ZipEntryInfo } from './zip-directory.js';
import { injectFault } from '../../system/fault.js';

/** Neighbouring ranges closer than this become one request. Units: bytes. */
const GAP = 16 * 1024;
/** The longest single request (a failed one costs little; progress is recorded per chunk anyway). */
const MAX_REQUEST = 32 * 1024 * 1024;
/** Below this share of reusable bytes the whole file is downloaded instead. */
const MIN_REUSE = 0.1;

/** A delta download's result: the assembled file (`<final>.delta`), its SHA-256 and checked entries. */
export interface DeltaResult {
  path: string;
  bytes: number;
  sha256: string;
  scan: FollowedScan;
  summary: TransferSummary;
  requests: number;
}

/** A tagged result: assembled, or why not (`quiet`: nothing worth telling, e.g. no local WAR at all). */
export type DeltaOutcome = { ok: true; result: DeltaResult } | { ok: false; reason: string; quiet?: boolean };

/**
 * Assembles revision `revision` of `url` into `<final>.delta`. Leaves its files for the next run when
 * the network fails (the DownloadError is thrown); removes them when it gives up for another reason.
 * @throws DownloadError (network, retries exhausted), local file errors (ENOSPC…) as they are.
 */
export async function deltaDownload(ctx: Context, url: string, revision: Revision, final: string, onBytes?: (bytes: number) => void): Promise<DeltaOutcome> {
  const sources = await findLocalSources(ctx, [final]);
  if (sources.length === 0) return { ok: false, reason: 'there is no earlier WAR on this machine to reuse entries from', quiet: true };
  ctx.emit({ type: 'step', step: 'download', message: `Downloading revision ${revision} from ${url}: only what is not already in the ${sources.length} WAR${sources.length > 1 ? 's' : ''} on this machine (delta download)` });
  const opened = await openDelta(ctx, url, revision, final);
  if (!opened.ok) return opened;
  const { files, total, directoryOffset, validators, entries } = opened;
  // kept: the assembled file on success (the caller verifies and renames it), every piece after a network failure
  let keep = false;
  try {
    const matches = matchEntries(entries, sources);
    let fetched = union(opened.fetched);
    const copied = new Map(opened.copied);
    const before = opened.resumed ? size(fetched) + size(dataOf(copied, entries)) : 0;
    let transferred = opened.transferred;
    let requests = opened.requests;
    let singleRanges: string | null = null;
    let trusted = 0;
    const intact = await intactCheck(ctx);
    // where each matched entry's data goes: as logged, else after a local header as long as the central one
    const guesses = await guessDataStarts(entries, matches);
    let planned: CopyJob[] = [];
    matches.forEach((from, index) => {
      if (from && !copied.has(index)) planned.push({ index, entry: entries[index]!, dataStart: guesses[index]!, from });
    });
    for (let round = 0; round < 3; round++) {
      const onDisk = union([...fetched, ...dataOf(copied, entries)]);
      const needed = subtract([{ start: 0, end: total }], [...onDisk, ...planned.map(intervalOf)]);
      const ranges = coalesce(needed, GAP, MAX_REQUEST);
      const jobs = planned.filter((job) => !covers([...fetched, ...ranges], job.dataStart, job.dataStart + job.entry.compressedSize));
      if (round === 0 && ranges.length > 0 && size(jobs.map(intervalOf)) + size(dataOf(copied, entries)) < MIN_REUSE * total) {
        return { ok: false, reason: `only ${Math.floor((size(jobs.map(intervalOf)) / total) * 100)} % of it could be reused from the WARs on this machine` };
      }
      if (ranges.length === 0 && jobs.length === 0) break;
      const [got, copies] = await Promise.all([
        fetchRanges(ctx.services.http, url, validators, ranges, files, (bytes) => onBytes?.(transferred + bytes)),
        // never over bytes already fetched, nor over those this round fetches
        copyEntries(jobs, files, union([...fetched, ...ranges]), intact),
      ]);
      transferred += got.bytes;
      requests += got.requests;
      trusted += copies.trusted;
      if (got.singleRanges && !singleRanges) {
        singleRanges = got.singleRanges;
        ctx.emit({ type: 'step', step: 'download', message: `Asking for one range at a time: ${got.singleRanges}` });
      }
      if (!got.ok) return { ok: false, reason: got.reason };
      fetched = union([...fetched, ...ranges]);
      for (const job of copies.done) copied.set(job.index, job.dataStart);
      // headers are all on disk now: a reused entry whose local header is longer or shorter than guessed is put right
      planned = [];
      for (const [index, at] of copied) {
        const header = await localHeader(files.data, entries[index]!);
        if (typeof header === 'string' || header.dataStart === at) continue;
        copied.delete(index);
        const from = matches[index];
        if (from) planned.push({ index, entry: entries[index]!, dataStart: header.dataStart, from });
      }
    }
    const missing = subtract([{ start: 0, end: total }], [...fetched, ...dataOf(copied, entries)]);
    if (missing.length > 0) return { ok: false, reason: `${size(missing)} bytes could not be placed (unusual local headers)` };
    const [checked, sha256] = await Promise.all([checkAssembled(files.data, entries, copied), hashFile(deltaPaths(final).data)]);
    if (!checked.ok) return { ok: false, reason: `the assembled WAR fails its check: ${checked.reason}` };
    const summary = summarize('delta', total, size(fetched), transferred, mostReusedFrom(copied, matches, entries));
    keep = true;
    ctx.emit({ type: 'step', step: 'download', message: `Delta download: ${requests} range requests, ${copied.size} entries copied from local WARs${trusted > 0 ? ` (${trusted} of them from a WAR whose SHA-256 is that of one verified and installed before, so not inflated again)` : ''}${before > 0 ? ` (an earlier run had left ${before} bytes of it)` : ''}` });
    return { ok: true, result: { path: deltaPaths(final).data, bytes: total, sha256, scan: checked.scan, summary, requests } };
  } catch (error) {
    // a network failure leaves the pieces for the next run to continue
    keep = error instanceof DownloadError;
    throw error;
  } finally {
    await files.close();
    if (!keep) await discardDelta(final);
  }
}

interface Opened {
  ok: true;
  files: DeltaFiles;
  total: number;
  directoryOffset: number;
  validators: Validators;
  entries: ZipEntryInfo[];
  fetched: Interval[];
  copied: Map<number, number>;
  resumed: boolean;
  transferred: number;
  requests: number;
}

/** Continues an earlier delta download of the same file, or starts one by reading the remote directory. */
async function openDelta(ctx: Context, url: string, revision: Revision, final: string): Promise<Opened | { ok: false; reason: string }> {
  const earlier = await readDelta(final, url, revision);
  if (earlier && covers(earlier.progress.fetched, earlier.sidecar.directoryOffset, earlier.sidecar.total)) {
    const { sidecar, progress } = earlier;
    try {
      const files = await DeltaFiles.open(final, ctx.serviceUser, null);
      const tail = Buffer.alloc(sidecar.total - sidecar.directoryOffset);
      await files.data.read(tail, 0, tail.length, sidecar.directoryOffset);
      const entries = await directoryFromBytes(tail, sidecar.directoryOffset, sidecar.total).catch(async (error: unknown) => {
        await files.close();
        throw error;
      });
      ctx.emit({ type: 'step', step: 'download', message: `Continuing the delta download of revision ${revision} left by an earlier run` });
      return { ok: true, files, ...sidecar, entries, fetched: progress.fetched, copied: progress.copied, resumed: true, transferred: 0, requests: 0 };
    } catch {
      // not usable after all: start afresh below
    }
  }
  const remote = await readRemoteDirectory(ctx.services.http, url);
  if (!remote.ok) {
    await discardDelta(final);
    return remote;
  }
  const d = remote.directory;
  const files = await DeltaFiles.open(final, ctx.serviceUser, { url, revision, validators: d.validators, total: d.total, directoryOffset: d.directoryOffset });
  await writeAll(files.data, d.tail, d.tailStart);
  files.fetched(d.tailStart, d.total);
  injectFault('delta:directory');
  return { ok: true, files, total: d.total, directoryOffset: d.directoryOffset, validators: d.validators, entries: d.entries, fetched: [{ start: d.tailStart, end: d.total }], copied: new Map(), resumed: false, transferred: d.fetched, requests: 1 };
}

function intervalOf(job: CopyJob): Interval {
  return { start: job.dataStart, end: job.dataStart + job.entry.compressedSize };
}

function dataOf(copied: ReadonlyMap<number, number>, entries: readonly ZipEntryInfo[]): Interval[] {
  return [...copied].map(([index, at]) => ({ start: at, end: at + entries[index]!.compressedSize }));
}

/** The revision of the local zip that gave the most copied bytes. */
function mostReusedFrom(copied: ReadonlyMap<number, number>, matches: ReadonlyArray<LocalMatch | null>, entries: readonly ZipEntryInfo[]): Revision | null {
  const bytes = new Map<Revision | null, number>();
  for (const index of copied.keys()) {
    const revision = matches[index]?.source.revision ?? null;
    bytes.set(revision, (bytes.get(revision) ?? 0) + entries[index]!.compressedSize);
  }
  return [...bytes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}
