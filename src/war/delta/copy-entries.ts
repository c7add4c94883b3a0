/**
 * Copies reused entries' compressed bytes from local zips into the delta download's data file. Every
 * entry is inflated and checked against the remote directory's CRC-32 and size as it is copied; one that
 * fails (a damaged backup) is not recorded as copied, so its bytes are fetched instead. Entries of a zip
 * known to be intact (its SHA-256 is that of a WAR verified before: see local-sources.ts) are copied
 * without inflating them: their compressed bytes are those that were checked then.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { DeltaFiles } from './delta-state.js';
import { copyBytes, passEntry } from './entry-data.js';
import type { Interval } from './intervals.js';
import type { LocalMatch } from './local-sources.js';
import type { ZipEntryInfo } from './zip-directory.js';

/** One entry to copy: its number in the remote directory, where its data goes, and where it comes from. */
export interface CopyJob {
  index: number;
  entry: ZipEntryInfo;
  dataStart: number;
  from: LocalMatch;
}

/** What was copied: entry numbers that passed their check, and those that did not (with the reason). Units: bytes. */
export interface Copied {
  done: CopyJob[];
  failed: Array<{ job: CopyJob; reason: string }>;
  bytes: number;
  /** Entries copied from a zip known to be intact (not inflated again). */
  trusted: number;
}

/** Entries copied at once: inflating runs on libuv's thread pool, so two keep both cores busy. */
const PARALLEL = 2;

/**
 * Copies `jobs` in file order, {@link PARALLEL} at a time, never over the bytes in `fetched`.
 * @param intact whether the zip at a path is known to be intact (awaited before its first entry is copied).
 */
export async function copyEntries(jobs: readonly CopyJob[], files: DeltaFiles, fetched: readonly Interval[], intact: (path: string) => Promise<boolean> = async () => false): Promise<Copied> {
  const result: Copied = { done: [], failed: [], bytes: 0, trusted: 0 };
  const handles = new Map<string, Promise<FileHandle>>();
  const queue = [...jobs].sort((a, b) => a.dataStart - b.dataStart);
  const copyOne = async (job: CopyJob): Promise<void> => {
    const path = job.from.source.path;
    if (!handles.has(path)) handles.set(path, open(path, 'r'));
    try {
      const handle = await handles.get(path)!;
      const sourceStart = await dataStartOf(handle, job.from.entry);
      if (await intact(path)) {
        await copyBytes(handle, sourceStart, job.entry.compressedSize, files.data, job.dataStart, fetched);
        files.copied(job.index, job.dataStart);
        result.done.push(job);
        result.bytes += job.entry.compressedSize;
        result.trusted++;
        return;
      }
      // copied and checked in one pass; fetched bytes are never overwritten, so a damaged entry spoils only
      // its own place, which is then fetched (it is not recorded as copied)
      const data = await passEntry(handle, sourceStart, job.entry.compressedSize, job.entry.method, { to: files.data, at: job.dataStart, keep: fetched });
      if (data.crc !== job.entry.crc32 || data.length !== job.entry.uncompressedSize) {
        result.failed.push({ job, reason: `${job.entry.name} in ${path} fails its CRC-32 check` });
        return;
      }
      files.copied(job.index, job.dataStart);
      result.done.push(job);
      result.bytes += job.entry.compressedSize;
    } catch (error) {
      result.failed.push({ job, reason: `${job.entry.name} cannot be read from ${path} (${error instanceof Error ? error.message : String(error)})` });
    }
  };
  try {
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        for (let job = queue.shift(); job; job = queue.shift()) await copyOne(job);
      }),
    );
  } finally {
    await Promise.all([...handles.values()].map((h) => h.then((handle) => handle.close()).catch(() => undefined)));
  }
  return result;
}

/**
 * Where each matched entry's data will start in the new WAR, guessed from the local zip the entry comes
 * from: the same builder writes the same local extra field for the same entry (the JDK's jar tool and
 * yazl, e.g., write a shorter one in the local header than in the central directory). Entries whose
 * local header cannot be read get the central directory's length.
 */
export async function guessDataStarts(remote: readonly ZipEntryInfo[], matches: ReadonlyArray<{ source: { path: string }; entry: ZipEntryInfo } | null>): Promise<number[]> {
  const handles = new Map<string, FileHandle>();
  const header = Buffer.alloc(30);
  try {
    const starts: number[] = [];
    for (const [index, entry] of remote.entries()) {
      const match = matches[index];
      let extra = entry.headerGuess - 30 - entry.nameLength;
      if (match) {
        try {
          if (!handles.has(match.source.path)) handles.set(match.source.path, await open(match.source.path, 'r'));
          const { bytesRead } = await handles.get(match.source.path)!.read(header, 0, 30, match.entry.offset);
          if (bytesRead === 30 && header.readUInt32LE(0) === 0x04034b50) extra = header.readUInt16LE(28);
        } catch {
          // unreadable: the central directory's guess stays
        }
      }
      starts.push(entry.offset + 30 + entry.nameLength + extra);
    }
    return starts;
  } finally {
    await Promise.all([...handles.values()].map((h) => h.close()));
  }
}

/**
 * Where an entry's data starts: after its local header, whose name and extra field lengths may differ
 * from the central directory's (APPNOTE §4.3.7).
 * @throws Error when there is no local header at the entry's offset.
 */
export async function dataStartOf(handle: FileHandle, entry: ZipEntryInfo): Promise<number> {
  const header = Buffer.alloc(30);
  const { bytesRead } = await handle.read(header, 0, 30, entry.offset);
  if (bytesRead !== 30 || header.readUInt32LE(0) !== 0x04034b50) throw new Error(`no local header at byte ${entry.offset}`);
  return entry.offset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
}
