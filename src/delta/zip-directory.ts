/**
 * The central directory of a zip (a WAR), read with yauzl: from a file on disk, or from the end of a
 * remote file held in memory (yauzl's RandomAccessReader over a buffer). Only the directory is read
 * here, never the entries' data.
 *
 * Format: PKWARE APPNOTE.TXT 6.3.10, §4.3.12 (central directory header), §4.5.3 (zip64 extra field).
 */
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
    const from = Math.max(start, this.base);
    if (from < end) this.data.copy(out, from - start, from - this.base, end - this.base);
    return Readable.from([out]);
  }
}

/** The directory of a zip whose last bytes (from `base` to `total`) are in `data`. @throws Error (yauzl's) when it is not a readable zip. */
export function directoryFromTail(data: Buffer, base: number, total: number): Promise<ZipDirectory> {
  return new Promise((resolve, reject) => {
    yauzl.fromRandomAccessReader(new TailReader(data, base), total, options, (error, zip) => (error || !zip ? reject(error) : collect(zip, resolve, reject)));
  });
}

/** The directory of the zip file at `path`. @throws Error (yauzl's or the file system's) when it cannot be read. */
export function directoryOfFile(path: string): Promise<ZipDirectory> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, options, (error, zip) => (error || !zip ? reject(error) : collect(zip, resolve, reject)));
  });
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
