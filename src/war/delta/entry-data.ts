/**
 * Reads one zip entry's compressed data from a file, optionally copying it to another file on the way,
 * and computes the CRC-32 and length of its uncompressed data (inflated on libuv's thread pool for
 * large entries). Memory: one block of {@link BLOCK} bytes at a time.
 */
import type { FileHandle } from 'node:fs/promises';
import { createInflateRaw, crc32, inflateRawSync } from 'node:zlib';
import { subtract, type Interval } from './intervals.js';

const BLOCK = 1 << 20;
/** Bytes of uncompressed data kept from the start of an entry (for revision.txt). */
const HEAD = 4096;

/** What an entry's data turned out to be; `crc` -1 when it does not inflate. Units: bytes. */
export interface EntryData {
  crc: number;
  length: number;
  /** The first 4 KiB of the uncompressed data. */
  head: Buffer;
}

/**
 * Passes `size` compressed bytes at `start` of `from` (method 0 stored, 8 deflated); with `copy` they
 * are written to `copy.to` at `copy.at` as well, except where `copy.keep` says the target already holds
 * bytes that must not be touched (bytes fetched from the server: a damaged local entry must not spoil them).
 * @throws the file system's errors (a short read is one: the file ended early).
 */
export async function passEntry(from: FileHandle, start: number, size: number, method: number, copy?: { to: FileHandle; at: number; keep: readonly Interval[] }): Promise<EntryData> {
  const block = Buffer.allocUnsafe(Math.min(BLOCK, Math.max(size, 1)));
  if (method === 8 && size <= BLOCK) {
    const data = await readExactly(from, block, start, size);
    if (copy) await writeAround(copy.to, data, copy.at, copy.keep);
    try {
      const plain = inflateRawSync(data);
      return { crc: crc32(plain) >>> 0, length: plain.length, head: Buffer.from(plain.subarray(0, HEAD)) };
    } catch {
      return { crc: -1, length: -1, head: Buffer.alloc(0) };
    }
  }
  let crc = 0;
  let length = 0;
  const head: Buffer[] = [];
  const take = (plain: Buffer) => {
    crc = crc32(plain, crc);
    if (length < HEAD) head.push(Buffer.from(plain.subarray(0, HEAD - length)));
    length += plain.length;
  };
  const inflater = method === 8 ? createInflateRaw({ chunkSize: 256 * 1024 }) : null;
  let broken = false;
  const ended = inflater
    ? new Promise<void>((resolve) => {
        inflater.on('data', take);
        inflater.on('end', resolve);
        inflater.on('error', () => {
          broken = true;
          resolve();
        });
      })
    : Promise.resolve();
  for (let at = 0; at < size && !broken; at += BLOCK) {
    const data = await readExactly(from, block, start + at, Math.min(BLOCK, size - at));
    if (copy) await writeAround(copy.to, data, copy.at + at, copy.keep);
    if (!inflater) take(data);
    // the block is read again only once the inflater has consumed it (write callback)
    else await Promise.race([new Promise<void>((resolve) => inflater.write(data, () => resolve())), ended]);
  }
  if (!broken) inflater?.end();
  else inflater?.destroy();
  await ended;
  return broken ? { crc: -1, length: -1, head: Buffer.alloc(0) } : { crc: crc >>> 0, length, head: Buffer.concat(head) };
}

/**
 * Copies `size` bytes at `start` of `from` to `to` at `at`, except where `keep` says the target already
 * holds bytes that must not be touched; nothing is inflated (for entries of a zip known to be intact).
 * @throws the file system's errors (a short read is one: the file ended early).
 */
export async function copyBytes(from: FileHandle, start: number, size: number, to: FileHandle, at: number, keep: readonly Interval[]): Promise<void> {
  const block = Buffer.allocUnsafe(Math.min(BLOCK, Math.max(size, 1)));
  for (let done = 0; done < size; done += BLOCK) {
    const data = await readExactly(from, block, start + done, Math.min(BLOCK, size - done));
    await writeAround(to, data, at + done, keep);
  }
}

async function readExactly(handle: FileHandle, buffer: Buffer, position: number, length: number): Promise<Buffer> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(buffer, got, length - got, position + got);
    if (bytesRead === 0) throw Object.assign(new Error(`the file ends before byte ${position + length}`), { code: 'ESHORT' });
    got += bytesRead;
  }
  return buffer.subarray(0, length);
}

/** Writes `data` at `position`, except the bytes inside `keep`. */
async function writeAround(handle: FileHandle, data: Buffer, position: number, keep: readonly Interval[]): Promise<void> {
  for (const piece of subtract([{ start: position, end: position + data.length }], keep)) {
    await writeAll(handle, data.subarray(piece.start - position, piece.end - position), piece.start);
  }
}

/** Writes all of `data` at `position` (positional writes may be short). */
export async function writeAll(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
