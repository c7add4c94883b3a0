/**
 * The central directory of a zip (a WAR), read with yauzl: from a file on disk, or from the end of a
 * remote file held in memory (yauzl's RandomAccessReader over a buffer). Only the directory is read
 * here, never the entries' data.
 *
 * Format: PKWARE APPNOTE.TXT 6.3.10, §4.3.12 (central directory header), §4.5.3 (zip64 extra field).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import yauzl from 'yauzl';

/** One entry as the central directory lists it. Units: bytes; `offset` is its local header's. */
export interface ZipEntryInfo {
  name: string;
  /** 0 stored, 8 deflated (other methods are refused before they get here). */
  method: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  offset: number;
  /** General purpose bit flag (bit 0: encrypted, bit 3: data descriptor follows the data). */
  flags: number;
  /** Length of the local header if its extra field is as long as the central one's. */
  headerGuess: number;
  /** Length of the name in bytes, as stored. */
  nameLength: number;
}

/** A zip's directory: its entries in directory order, and where the directory starts. */
export interface ZipDirectory {
  entries: ZipEntryInfo[];
}

/**
 * A RandomAccessReader over the last bytes of a file, `data` being the bytes from `base` to the end.
 * Bytes before `base` read as zeros: yauzl reads them only while it searches backwards for the end of
 * central directory record, which it finds in `data` first.
 */
class TailReader extends yauzl.RandomAccessReader {
  constructor(
    private readonly data: Buffer,
    private readonly base: number,
  ) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const out = Buffer.alloc(end - start);
    this.copyTo(out, 0, start, end);
    return Readable.from([out]);
  }

  /** yauzl reads the directory with `read`: served by a copy, without the stream per read of the default. */
  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (error: Error | null, bytesRead?: number) => void): void {
    buffer.fill(0, offset, offset + length);
    this.copyTo(buffer, offset, position, position + length);
    setImmediate(() => callback(null, length));
  }

  private copyTo(target: Buffer, at: number, start: number, end: number): void {
    const from = Math.max(start, this.base);
    if (from < end) this.data.copy(target, at + from - start, from - this.base, Math.min(end, this.base + this.data.length) - this.base);
  }
}

/** The directory of a zip whose last bytes (from `base` to `total`) are in `data`. @throws Error (yauzl's) when it is not a readable zip. */
export function directoryFromTail(data: Buffer, base: number, total: number): Promise<ZipDirectory> {
  return new Promise((resolve, reject) => {
    yauzl.fromRandomAccessReader(new TailReader(data, base), total, options, (error, zip) => (error || !zip ? reject(error) : collect(zip, resolve, reject)));
  });
}

/**
 * The directory of the zip file at `path`, read into memory from its end first (yauzl's reader over a
 * file costs a stream per small read: ~0.1 s of CPU for a WAR with a few thousand entries).
 * @throws Error (yauzl's or the file system's) when it cannot be read.
 */
export async function directoryOfFile(path: string): Promise<ZipDirectory> {
  const handle = await open(path, 'r');
  try {
    const total = (await handle.stat()).size;
    let base = Math.max(0, total - 256 * 1024);
    let data = await readAt(handle, base, total - base);
    const end = findDirectory(data, base);
    if (typeof end === 'string') throw new Error(end);
    if (end.directoryOffset < base) {
      data = Buffer.concat([await readAt(handle, end.directoryOffset, base - end.directoryOffset), data]);
      base = end.directoryOffset;
    }
    return await directoryFromTail(data, base, total);
  } finally {
    await handle.close();
  }
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  if (bytesRead !== length) throw new Error(`the file ends before byte ${position + length}`);
  return buffer;
}

/**
 * Where the central directory starts, from the end records in `tail` (the file's bytes from `base` to
 * its end); a reason string when there is none or it is not where it should be.
 * Format: APPNOTE.TXT §4.3.14–4.3.16 (zip64 end of central directory record and locator, end record).
 */
export function findDirectory(tail: Buffer, base: number): { directoryOffset: number } | string {
  const at = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (at < 0 || at + 22 > tail.length) return 'it has no zip end of central directory record in its last bytes';
  if (tail.readUInt16LE(at + 4) !== 0 || tail.readUInt16LE(at + 6) !== 0) return 'it is a zip split over several disks';
  let directoryOffset = tail.readUInt32LE(at + 16);
  let directorySize = tail.readUInt32LE(at + 12);
  let directoryEnd = base + at;
  if (directoryOffset === 0xffffffff || directorySize === 0xffffffff || tail.readUInt16LE(at + 10) === 0xffff) {
    const locator = at - 20;
    if (locator < 0 || tail.readUInt32LE(locator) !== 0x07064b50) return 'its zip64 end of central directory locator is missing';
    const record = Number(tail.readBigUInt64LE(locator + 8)) - base;
    if (record < 0 || record + 56 > tail.length || tail.readUInt32LE(record) !== 0x06064b50) return 'its zip64 end of central directory record is not where the locator says';
    directorySize = Number(tail.readBigUInt64LE(record + 40));
    directoryOffset = Number(tail.readBigUInt64LE(record + 48));
    directoryEnd = base + record;
  }
  if (directoryOffset + directorySize !== directoryEnd) return 'its central directory does not end where the end record says (data before the zip, or an unknown layout)';
  return { directoryOffset };
}

const options: yauzl.Options = { lazyEntries: true, autoClose: true, decodeStrings: true, validateEntrySizes: false, strictFileNames: false };

function collect(zip: yauzl.ZipFile, resolve: (d: ZipDirectory) => void, reject: (e: unknown) => void): void {
  const entries: ZipEntryInfo[] = [];
  zip.on('error', reject);
  zip.on('end', () => resolve({ entries }));
  zip.on('entry', (e: yauzl.Entry) => {
    entries.push({
      name: e.fileName,
      method: e.compressionMethod,
      crc32: e.crc32 >>> 0,
      compressedSize: e.compressedSize,
      uncompressedSize: e.uncompressedSize,
      offset: e.relativeOffsetOfLocalHeader,
      flags: e.generalPurposeBitFlag,
      headerGuess: 30 + e.fileNameLength + e.extraFieldLength,
      nameLength: e.fileNameLength,
    });
    zip.readEntry();
  });
  zip.readEntry();
}

/** What makes two entries interchangeable: same CRC-32, compressed and uncompressed size, and method. */
export function entryKey(e: ZipEntryInfo): string {
  return `${e.crc32}:${e.compressedSize}:${e.uncompressedSize}:${e.method}`;
}
