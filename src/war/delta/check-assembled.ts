/**
 * Checks the assembled WAR entry by entry before it may be verified as a whole: every entry's local
 * header is where the directory says and names the same entry, and its data inflates to the directory's
 * CRC-32 and size. Entries copied from a local zip were checked while they were copied and are not read
 * again. The result is the same {@link FollowedScan} the full download's follower gives, so that
 * {@link verifyWar} then only has to match the central directory against it.
 */
import type { FileHandle } from 'node:fs/promises';
import { crc32, inflateRawSync } from 'node:zlib';
import { WAR_REVISION_ENTRY } from '../../revision.js';
import type { FollowedScan } from '../follow.js';
import { passEntry } from './entry-data.js';
import type { ZipEntryInfo } from './zip-directory.js';

/** The scan, or the first entry that is not right. */
export type Checked = { ok: true; scan: FollowedScan } | { ok: false; reason: string };

/**
 * @param copied entry number → data start of the entries copied and checked (from the log or this run).
 */
export async function checkAssembled(data: FileHandle, entries: readonly ZipEntryInfo[], copied: ReadonlyMap<number, number>): Promise<Checked> {
  const scan: FollowedScan = { entries: new Map(), revisionText: null };
  const window = new Window(data);
  for (const [index, entry] of entries.entries()) {
    const header = await localHeader(window, entry);
    if (typeof header === 'string') return { ok: false, reason: header };
    const known = copied.get(index) === header.dataStart && entry.name !== WAR_REVISION_ENTRY;
    if (!known) {
      const found = entry.compressedSize <= SMALL ? dataCheck(await window.get(header.dataStart, entry.compressedSize), entry.method) : await passEntry(data, header.dataStart, entry.compressedSize, entry.method);
      if (found.crc !== entry.crc32 || found.length !== entry.uncompressedSize) return { ok: false, reason: `entry ${entry.name} fails its ${found.crc !== entry.crc32 ? 'CRC-32' : 'length'} check` };
      if (entry.name === WAR_REVISION_ENTRY) scan.revisionText = found.head.toString('utf8');
    }
    scan.entries.set(entry.offset, { name: header.name, crc32: entry.crc32, compressedSize: entry.compressedSize, uncompressedSize: entry.uncompressedSize });
  }
  return { ok: true, scan };
}

/** Entries up to this size are checked from the read-ahead window (one read for many small entries). Units: bytes. */
const SMALL = 256 * 1024;

/** Reads through a window of {@link WINDOW} bytes, so that the headers and data of neighbouring small entries cost one read. */
class Window {
  private offset = 0;
  private data = Buffer.alloc(0);
  constructor(private readonly handle: FileHandle) {}

  /** `length` bytes at `offset` (fewer at the end of the file). The view is valid until the next call. */
  async get(offset: number, length: number): Promise<Buffer> {
    if (offset < this.offset || offset + length > this.offset + this.data.length) {
      const buffer = Buffer.allocUnsafe(Math.max(length, WINDOW));
      const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, offset);
      this.offset = offset;
      this.data = buffer.subarray(0, bytesRead);
    }
    return this.data.subarray(offset - this.offset, offset - this.offset + length);
  }
}

const WINDOW = 1 << 20;

/** CRC-32 and length of a small entry's data held in memory. */
function dataCheck(data: Buffer, method: number): { crc: number; length: number; head: Buffer } {
  try {
    const plain = method === 8 ? inflateRawSync(data) : data;
    return { crc: crc32(plain) >>> 0, length: plain.length, head: plain.subarray(0, 4096) };
  } catch {
    return { crc: -1, length: -1, head: Buffer.alloc(0) };
  }
}

/** An entry's local header as it is in the assembled file: its name and where its data starts; a reason string when it is not there. */
export async function localHeader(source: FileHandle | Window, entry: ZipEntryInfo): Promise<{ name: string; dataStart: number } | string> {
  const nameLength = Buffer.byteLength(entry.name, 'utf8');
  const buffer = source instanceof Window ? await source.get(entry.offset, 30 + nameLength) : Buffer.alloc(30 + nameLength);
  const bytesRead = source instanceof Window ? buffer.length : (await source.read(buffer, 0, buffer.length, entry.offset)).bytesRead;
  if (bytesRead !== 30 + nameLength || buffer.readUInt32LE(0) !== 0x04034b50) return `there is no local header for ${entry.name} at byte ${entry.offset}`;
  const name = buffer.toString('utf8', 30, 30 + buffer.readUInt16LE(26));
  if (buffer.readUInt16LE(26) !== nameLength || name !== entry.name) return `the local header at byte ${entry.offset} names ${JSON.stringify(name)}, not ${entry.name}`;
  return { name, dataStart: entry.offset + 30 + buffer.readUInt16LE(26) + buffer.readUInt16LE(28) };
}
