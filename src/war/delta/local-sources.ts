/**
 * The zips already on this machine that entries of the new WAR may be copied from: the installed WAR,
 * verified WARs of other revisions in staging, and the backups (newest revision first). Only their
 * central directories are read here; an entry's data is checked when it is copied (see copy-entries.ts),
 * unless the whole zip is known to be intact ({@link intactCheck}).
 */
import { join } from 'node:path';
import { warPath, type Context } from '../../context.js';
import { parseRevisionWarName, type Revision } from '../../revision.js';
import { listBackups } from '../backups.js';
import { isFile, listDir } from '../../system/files.js';
import { hashFile } from '../../system/http.js';
import { readWarRevision } from '../verify.js';
import { directoryOfFile, entryKey, type ZipEntryInfo } from './zip-directory.js';

/** A local zip and its directory. */
export interface LocalSource {
  path: string;
  revision: Revision | null;
  entries: ZipEntryInfo[];
}

/** Where one entry's compressed bytes can be copied from. */
export interface LocalMatch {
  source: LocalSource;
  entry: ZipEntryInfo;
}

/**
 * The readable local zips, installed WAR first, then other revisions in staging, then backups newest
 * first; `skip` (the file being written) excluded. Unreadable files are left out (they are never
 * copied from), without a word: a damaged backup is not this step's concern.
 */
export async function findLocalSources(ctx: Context, skip: readonly string[]): Promise<LocalSource[]> {
  const candidates: Array<{ path: string; revision: Revision | null }> = [];
  const installed = warPath(ctx.config);
  if (await isFile(installed)) candidates.push({ path: installed, revision: await readWarRevision(installed) });
  const staging = ctx.config.paths.staging;
  for (const name of await listDir(staging)) {
    const revision = parseRevisionWarName(name);
    if (revision !== null) candidates.push({ path: join(staging, name), revision });
  }
  for (const backup of await listBackups(ctx)) candidates.push({ path: backup.path, revision: backup.revision });
  const sources: LocalSource[] = [];
  const seen = new Set<string>(skip);
  for (const candidate of candidates) {
    if (seen.has(candidate.path)) continue;
    seen.add(candidate.path);
    try {
      sources.push({ ...candidate, entries: (await directoryOfFile(candidate.path)).entries });
    } catch {
      // not a readable zip: nothing is taken from it
    }
  }
  return sources;
}

/**
 * For each remote entry, a local entry with the same CRC-32, compressed size, uncompressed size and
 * method (an entry of the same name preferred, then the first source in order), or null.
 */
export function matchEntries(remote: readonly ZipEntryInfo[], sources: readonly LocalSource[]): Array<LocalMatch | null> {
  const byKey = new Map<string, LocalMatch>();
  const byName = new Map<string, LocalMatch>();
  for (const source of sources) {
    for (const entry of source.entries) {
      if (entry.flags & 0x0041 || entry.name.endsWith('/')) continue;
      const key = entryKey(entry);
      if (!byKey.has(key)) byKey.set(key, { source, entry });
      const named = `${entry.name}\u0000${key}`;
      if (!byName.has(named)) byName.set(named, { source, entry });
    }
  }
  return remote.map((e) => (e.compressedSize === 0 ? null : (byName.get(`${e.name}\u0000${entryKey(e)}`) ?? byKey.get(entryKey(e)) ?? null)));
}

/**
 * Whether a local zip is byte for byte a WAR that passed verification before (every entry's CRC-32,
 * WEB-INF/web.xml, revision) and was installed: its SHA-256 is one that `runs.jsonl` records for a run
 * that ended `updated`. Then its entries need no CRC-32 check (no inflating) when they are copied. Each
 * file is hashed once, on the first question about it, and only when such a record exists at all.
 * @returns a function of a path; it never rejects (an unreadable file is not intact).
 */
export async function intactCheck(ctx: Context): Promise<(path: string) => Promise<boolean>> {
  const verified = new Set((await ctx.state.runs()).flatMap((run) => (run.result === 'updated' && run.sha256 ? [run.sha256] : [])));
  const answers = new Map<string, Promise<boolean>>();
  return (path) => {
    if (verified.size === 0) return Promise.resolve(false);
    if (!answers.has(path)) answers.set(path, hashFile(path).then((sha256) => verified.has(sha256), () => false));
    return answers.get(path)!;
  };
}
