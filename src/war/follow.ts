/**
 * Verifies a WAR while it is being downloaded: follows the partial file on disk as it grows and checks
 * each zip entry as soon as its bytes are there (local file header, then the entry's data inflated and
 * compared with its CRC-32 and sizes), so that by the end of the download nearly all the work of
 * {@link verifyWar} is done. Inflating runs on libuv's thread pool (zlib streams), so it overlaps
 * with the transfer on a second core; memory stays at a few MiB (reads of at most 1 MiB).
 *
 * Only what a plain WAR has is followed: stored or deflated entries whose sizes are in the local header
 * (no data descriptor, no zip64, no encryption). For anything else the follower gives up quietly and
 * `verifyWar` does its full pass after the download instead.
 *
 * Format: PKWARE APPNOTE.TXT 6.3.10, §4.3.7 (local file header), §4.4.4 (bit 3: data descriptor).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createInflateRaw, crc32, inflateRawSync } from 'node:zlib';
import { VerifyError } from '../errors.js';
import { WAR_REVISION_ENTRY } from '../revision.js';

/** One entry as its local header and its data showed it. Units: bytes. */
export interface LocalEntry {
  name: string;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
}

/** What following the whole file found: entries by the offset of their local header. */
export interface FollowedScan {
  entries: Map<number, LocalEntry>;
  /** Content of `WEB-INF/classes/revision.txt` (first 4 KiB), null if there was none. */
  revisionText: string | null;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const BLOCK = 256 * 1024;
const SMALL_ENTRY = 1 << 20;

/** Raised inside the follower when the file is not one it can follow (falls back to the full pass). */
class GiveUp extends Error {}

/**
 * Follows a WAR being written to `path`. Call {@link written} whenever more bytes are on disk,
 * {@link finish} once the download is complete, {@link abort} when it failed or restarted.
 */
export class WarFollower {
  private available = 0;
  private size: number | null = null;
  private wake: (() => void) | null = null;
  private aborted = false;
  private readonly result: Promise<FollowedScan | null>;
  /** The last read, with what was read ahead (see {@link read}). */
  private window: { offset: number; data: Buffer; whole: Buffer | null } | null = null;
  /** Block buffers free for the next refill. */
  private readonly free: Buffer[] = [];
  /** Block buffers lent to the inflater, with the number of its writes that still read from them. */
  private readonly lent = new Map<Buffer, number>();

  /**
   * @param onDamage told at once when an entry fails its check (the VerifyError that {@link finish}
   *   will throw), so that the download can stop instead of fetching the rest of a file already known bad.
   */
  constructor(
    private readonly path: string,
    onDamage?: (error: VerifyError) => void,
  ) {
    this.result = this.run();
    // observed in finish(); a damaged entry is also reported as soon as it is found
    this.result.catch((error: unknown) => {
      if (error instanceof VerifyError && !this.aborted) onDamage?.(error);
    });
  }

  /** The file now has at least `bytes` bytes on disk. */
  written(bytes: number): void {
    if (bytes > this.available) this.available = bytes;
    this.poke();
  }

  /**
   * The download is complete: `size` bytes. Resolves to the followed scan once every entry is checked,
   * or null when the file was not one the follower could check (then a full pass is needed).
   * @throws VerifyError when an entry's data does not match its CRC-32 or sizes.
   */
  async finish(size: number): Promise<FollowedScan | null> {
    this.size = size;
    this.available = Math.max(this.available, size);
    this.poke();
    return this.result;
  }

  /** Stops following (the download failed, or starts again from byte 0). */
  abort(): void {
    this.aborted = true;
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Waits until `end` bytes are on disk; false when the file ended (or the follower was aborted) before. */
  private async until(end: number): Promise<boolean> {
    while (!this.aborted && this.available < end) {
      if (this.size !== null) return false;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return !this.aborted;
  }

  private async run(): Promise<FollowedScan | null> {
    let handle: FileHandle | null = null;
    try {
      // the file may not exist before the first bytes arrive
      if (!(await this.until(1))) return null;
      handle = await open(this.path, 'r');
      return await this.walk(handle);
    } catch (error) {
      if (error instanceof GiveUp) return null;
      throw error;
    } finally {
      await handle?.close();
    }
  }

  /**
   * `length` bytes at `offset`, once they are on disk. Reads ahead up to {@link BLOCK} bytes of what is
   * already on disk, so that the header, name and data of the many small entries of a WAR cost one read
   * instead of three. The returned view is valid until the next refill: a few {@link BLOCK} buffers take
   * turns as the window, a buffer lent to the inflater ({@link lend}) only once the inflater has consumed
   * it, so that following a WAR leaves no garbage for the GC (garbage showed as peak RSS).
   */
  private async read(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
    const window = this.window;
    if (window && offset >= window.offset && offset + length <= window.offset + window.data.length) {
      return window.data.subarray(offset - window.offset, offset - window.offset + length);
    }
    if (!(await this.until(offset + length))) throw new GiveUp('ended');
    const size = Math.max(length, Math.min(BLOCK, this.available - offset));
    const whole = size <= BLOCK ? (this.free.pop() ?? Buffer.allocUnsafeSlow(BLOCK)) : null;
    const buffer = whole ? whole.subarray(0, size) : Buffer.allocUnsafe(size);
    // what the window already holds of it is copied, not read again
    const have = window && offset >= window.offset && offset < window.offset + window.data.length ? Math.min(size, window.offset + window.data.length - offset) : 0;
    if (have > 0) window!.data.copy(buffer, 0, offset - window!.offset, offset - window!.offset + have);
    this.window = null;
    if (window?.whole) this.recycle(window.whole);
    const { bytesRead } = await handle.read(buffer, have, size - have, offset + have);
    if (bytesRead !== size - have) throw new GiveUp('short read');
    this.window = { offset, data: buffer, whole };
    return buffer.subarray(0, length);
  }

  /** Puts a block buffer back for reuse, unless it is the window or the inflater still reads from it. */
  private recycle(block: Buffer): void {
    if (block !== this.window?.whole && !this.lent.has(block)) this.free.push(block);
  }

  /** The window's buffer is read by an inflater write until the returned callback is called. */
  private lend(): () => void {
    const block = this.window?.whole;
    if (!block) return () => undefined;
    this.lent.set(block, (this.lent.get(block) ?? 0) + 1);
    return () => {
      const left = this.lent.get(block)! - 1;
      if (left > 0) return void this.lent.set(block, left);
      this.lent.delete(block);
      this.recycle(block);
    };
  }

  private async walk(handle: FileHandle): Promise<FollowedScan> {
    const scan: FollowedScan = { entries: new Map(), revisionText: null };
    let offset = 0;
    for (;;) {
      if (this.aborted) throw new GiveUp('aborted');
      const header = await this.read(handle, offset, 30);
      const signature = header.readUInt32LE(0);
      if (signature === CENTRAL_HEADER) return scan;
      if (signature !== LOCAL_HEADER) throw new GiveUp('no local header');
      const flags = header.readUInt16LE(6);
      const method = header.readUInt16LE(8);
      const crc = header.readUInt32LE(14);
      const compressedSize = header.readUInt32LE(18);
      const uncompressedSize = header.readUInt32LE(22);
      const nameLength = header.readUInt16LE(26);
      const extraLength = header.readUInt16LE(28);
      if (flags & 0x0009 || compressedSize === 0xffffffff || uncompressedSize === 0xffffffff || (method !== 0 && method !== 8)) {
        throw new GiveUp('entry the follower does not handle');
      }
      const name = (await this.read(handle, offset + 30, nameLength)).toString('utf8');
      const dataStart = offset + 30 + nameLength + extraLength;
      const keep = name === WAR_REVISION_ENTRY;
      const { crc: actualCrc, length, kept } = await this.checkData(handle, dataStart, compressedSize, method === 8, keep);
      if (actualCrc !== crc || length !== uncompressedSize) {
        throw new VerifyError(`${this.path} is damaged: entry ${name} fails its ${actualCrc !== crc ? 'CRC-32' : 'length'} check.`, {
          hint: 'Nothing was installed. Delete the file and download again; if it keeps failing, tell LeTTo support.',
        });
      }
      if (keep) scan.revisionText = kept;
      scan.entries.set(offset, { name, crc32: crc, compressedSize, uncompressedSize });
      offset = dataStart + compressedSize;
    }
  }

  /** CRC-32 and length of an entry's uncompressed data, read from disk as it arrives. */
  private async checkData(handle: FileHandle, start: number, size: number, deflated: boolean, keep: boolean): Promise<{ crc: number; length: number; kept: string | null }> {
    if (size <= SMALL_ENTRY) {
      const data = await this.read(handle, start, size);
      let plain: Buffer;
      try {
        plain = deflated ? inflateRawSync(data) : data;
      } catch {
        return { crc: -1, length: -1, kept: null };
      }
      return { crc: crc32(plain) >>> 0, length: plain.length, kept: keep ? plain.subarray(0, 4096).toString('utf8') : null };
    }
    let crc = 0;
    let length = 0;
    if (!deflated) {
      for (let at = start; at < start + size; at += BLOCK) {
        const chunk = await this.read(handle, at, Math.min(BLOCK, start + size - at));
        crc = crc32(chunk, crc);
        length += chunk.length;
      }
      return { crc: crc >>> 0, length, kept: null };
    }
    const inflater = createInflateRaw({ chunkSize: 256 * 1024 });
    inflater.on('data', (chunk: Buffer) => {
      crc = crc32(chunk, crc);
      length += chunk.length;
    });
    const ended = new Promise<boolean>((resolve) => {
      inflater.on('end', () => resolve(true));
      inflater.on('error', () => resolve(false));
    });
    try {
      for (let at = start; at < start + size; at += BLOCK) {
        const chunk = await this.read(handle, at, Math.min(BLOCK, start + size - at));
        // the chunk is a view of the window: lent to the inflater until it has consumed it (callback)
        if (!inflater.write(chunk, this.lend())) {
          const stop = await Promise.race([new Promise<boolean>((resolve) => inflater.once('drain', () => resolve(true))), ended.then(() => false)]);
          if (!stop) break; // the inflater failed (or ended early): reported below
        }
      }
    } catch (error) {
      inflater.destroy();
      throw error;
    }
    inflater.end();
    return (await ended) ? { crc: crc >>> 0, length, kept: null } : { crc: -1, length: -1, kept: null };
  }
}
