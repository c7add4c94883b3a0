/**
 * Reads the central directory of the WAR on the download server with Range requests: first the last
 * {@link TAIL} bytes (end of central directory record, zip64 locator and record, usually the whole
 * directory), then, if the directory starts before them, the rest of it. Refuses what the delta
 * download does not handle, with a reason: several disks, encryption, compression other than stored or
 * deflated, a directory that does not end where the end record says (see findDirectory).
 */
import type { HttpClient, Validators } from '../../system/http.js';
import { directoryFromTail, findDirectory, type ZipEntryInfo } from './zip-directory.js';

/** Bytes asked for first: the directory of a WAR with a few thousand entries fits. */
export const TAIL = 512 * 1024;

/** The remote WAR's directory. Units: bytes. */
export interface RemoteDirectory {
  total: number;
  validators: Validators;
  /** Where the central directory starts. */
  directoryOffset: number;
  /** The file's bytes from `tailStart` (at most `directoryOffset`) to the end, as received. */
  tail: Buffer;
  tailStart: number;
  entries: ZipEntryInfo[];
  /** Bytes received for it (the whole answers). */
  fetched: number;
}

/** A tagged result: the directory, or why the delta download cannot use this file. */
export type Remote = { ok: true; directory: RemoteDirectory } | { ok: false; reason: string };

/** Fetches and reads the remote WAR's central directory (1 or 2 requests). */
export async function readRemoteDirectory(http: HttpClient, url: string): Promise<Remote> {
  let fetched = 0;
  const get = async (range: { start: number; end: number } | { suffix: number }, expect: Validators | null) => {
    const chunks: Buffer[] = [];
    const answer = await http.readRange(url, range, { expect, onData: (chunk) => void chunks.push(chunk) });
    const data = Buffer.concat(chunks);
    fetched += data.length;
    return { answer, data };
  };
  const last = await get({ suffix: TAIL }, null);
  if (!last.answer.ok) return last.answer;
  const { total, validators } = last.answer;
  let base = last.answer.start;
  let tail = last.data;
  const end = findDirectory(tail, base);
  if (typeof end === 'string') return { ok: false, reason: end };
  if (end.directoryOffset < base) {
    const rest = await get({ start: end.directoryOffset, end: base - 1 }, validators);
    if (!rest.answer.ok) return rest.answer;
    tail = Buffer.concat([rest.data, tail]);
    base = end.directoryOffset;
  }
  let entries: ZipEntryInfo[];
  try {
    entries = (await directoryFromTail(tail, base, total)).entries;
  } catch (error) {
    return { ok: false, reason: `its central directory cannot be read (${error instanceof Error ? error.message : String(error)})` };
  }
  const refused = refuse(entries, end.directoryOffset);
  if (refused) return { ok: false, reason: refused };
  return { ok: true, directory: { total, validators, directoryOffset: end.directoryOffset, tail, tailStart: base, entries, fetched } };
}

/** Reads the directory back from a file's tail already on disk (a delta download being continued). */
export async function directoryFromBytes(tail: Buffer, directoryOffset: number, total: number): Promise<ZipEntryInfo[]> {
  return (await directoryFromTail(tail, directoryOffset, total)).entries;
}

/** Why the entries cannot be assembled from pieces, or null when they can. */
function refuse(entries: ZipEntryInfo[], directoryOffset: number): string | null {
  for (const e of entries) {
    if (e.flags & 0x0041) return `entry ${e.name} is encrypted`;
    if (e.method !== 0 && e.method !== 8) return `entry ${e.name} uses compression method ${e.method} (only stored and deflated are handled)`;
    if (e.offset + 30 + e.nameLength + e.compressedSize > directoryOffset) return `entry ${e.name} lies beyond the start of the central directory`;
  }
  return null;
}
