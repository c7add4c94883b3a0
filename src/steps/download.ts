import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArchiveListing, pickWarInFolder, type ArchiveEntry } from '../archive.js';
import type { Context, WarFile } from '../context.js';
import { DownloadError, LettoError } from '../errors.js';
import { channelFiles, revisionWarName, type Channel, type Revision } from '../revision.js';
import { ensureDir, giveTo, isFile, moveFile } from '../system/files.js';
import { verifyWar } from '../war.js';

/** Where a revision is downloaded from: the channel's WAR, or the server's `archiv/` folder. */
export type WarSource = { kind: 'channel'; channel: Channel } | { kind: 'archive' };

/** The channel's WAR when `revision` is the channel's current one, else the archive. */
export function sourceFor(revision: Revision, available: Revision, channel: Channel): WarSource {
  return revision === available ? { kind: 'channel', channel } : { kind: 'archive' };
}

/**
 * Steps "download" and "verify": fetches the WAR for `revision` into `paths.staging` and verifies it
 * ({@link verifyWar}) before anything touches the server. The download goes to `letto-<rev>.war.part`
 * and is renamed to `letto-<rev>.war` only once verified. A verified WAR already in staging is reused.
 *
 * @returns the staged WAR with its revision and SHA-256.
 * @throws DownloadError, VerifyError (exit 1, the server is untouched).
 */
export async function downloadRevision(ctx: Context, revision: Revision, source: WarSource): Promise<WarFile> {
  const staging = ctx.config.paths.staging;
  await ensureDir(staging, ctx.serviceUser);
  const final = join(staging, revisionWarName(revision));
  const reused = await reuseStaged(ctx, final, revision);
  if (reused) return reused;

  const url = source.kind === 'channel' ? new URL(channelFiles(source.channel).war, ctx.config.server.url).href : await archiveWarUrl(ctx, revision);
  const part = `${final}.part`;
  await rm(part, { force: true });
  ctx.emit({ type: 'step', step: 'download', message: `Downloading revision ${revision} from ${url}` });
  let result;
  try {
    result = await ctx.services.http.download(url, part, (progress) => ctx.emit({ type: 'progress', progress }));
  } catch (error) {
    await rm(part, { force: true });
    throw error;
  } finally {
    ctx.emit({ type: 'progress-done' });
  }
  ctx.emit({ type: 'step', step: 'verify', message: `Verifying ${result.bytes} bytes (zip structure, CRC-32 of every entry, WEB-INF/web.xml, revision)` });
  try {
    const info = await verifyWar(part, revision);
    if (info.revision === null) ctx.emit({ type: 'warn', message: `The WAR carries no WEB-INF/classes/revision.txt; trusting the revision file (${revision}).` });
  } catch (error) {
    await rm(part, { force: true });
    throw error;
  }
  await giveTo(part, ctx.serviceUser);
  await moveFile(part, final);
  return { path: final, revision, sha256: result.sha256 };
}

async function reuseStaged(ctx: Context, path: string, revision: Revision): Promise<WarFile | null> {
  if (!(await isFile(path))) return null;
  try {
    await verifyWar(path, revision);
  } catch (error) {
    ctx.emit({ type: 'warn', message: `Discarding ${path}: ${error instanceof LettoError ? error.message : String(error)}` });
    await rm(path, { force: true });
    return null;
  }
  ctx.emit({ type: 'step', step: 'verify', message: `Revision ${revision} is already downloaded and verified in ${path}` });
  return { path, revision };
}

/**
 * Finds the URL of an archived revision's WAR in `<server.url>archiv/`.
 * @throws DownloadError when the archive has no such revision.
 */
export async function archiveWarUrl(ctx: Context, revision: Revision): Promise<string> {
  const entries = await readArchive(ctx);
  const entry = entries.find((e) => e.revision === revision);
  if (!entry) {
    const newest = entries.slice(0, 5).map((e) => e.revision).join(', ');
    throw new DownloadError(`Revision ${revision} is not in the server's archive (${archiveUrl(ctx)}).`, {
      hint: newest ? `Pick one that is there, e.g. ${newest} (\`letto-update list --remote\`).` : 'The archive listing is empty; check server.url.',
    });
  }
  if (entry.kind === 'war') return entry.url;
  const inner = pickWarInFolder(await ctx.services.http.getText(entry.url), entry.url);
  if (!inner) throw new DownloadError(`The archive folder ${entry.url} holds no single WAR file.`, { hint: 'Pick another revision or download it by hand.' });
  return inner;
}

/** Deletes a staged WAR once it is installed (it lives on in webapps, and later as a backup). Other files are left alone. */
export async function discardStaged(ctx: Context, war: WarFile): Promise<void> {
  if (war.revision !== null && war.path === join(ctx.config.paths.staging, revisionWarName(war.revision))) await rm(war.path, { force: true });
}

/** `<server.url>archiv/`, the folder of older revisions (see DOMAIN.md). */
function archiveUrl(ctx: Context): string {
  return new URL('archiv/', ctx.config.server.url).href;
}

/**
 * The revisions in the server's `archiv/` listing, newest first ({@link parseArchiveListing}).
 * @throws DownloadError when the listing cannot be read.
 */
export async function readArchive(ctx: Context): Promise<ArchiveEntry[]> {
  const url = archiveUrl(ctx);
  return parseArchiveListing(await ctx.services.http.getText(url), url);
}
