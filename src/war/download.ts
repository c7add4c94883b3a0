import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArchiveListing, pickWarInFolder, type ArchiveEntry } from './archive.js';
import type { Context, WarFile } from '../context.js';
import { DownloadError, LettoError, VerifyError } from '../errors.js';
import { channelFiles, revisionWarName, type Channel, type Revision } from '../revision.js';
import { ensureDir, fileSize, giveTo, isFile, moveFile, writeFileAtomically } from '../system/files.js';
import { hashFile, type DownloadResult, type Validators } from '../system/http.js';
import type { Account } from '../system/users.js';
import { verifyWar } from './verify.js';
import { deltaDownload } from './delta/delta-download.js';
import { discardDelta } from './delta/delta-state.js';
import { summarize } from './delta/summary.js';
import { WarFollower } from './follow.js';
import type { WarSource } from '../revision.js';

/** Where a revision is downloaded from: the channel's WAR, or the server's `archiv/` folder. */

/** The channel's WAR when `revision` is the channel's current one, else the archive. */
export function sourceFor(revision: Revision, available: Revision, channel: Channel): WarSource {
  return revision === available ? { kind: 'channel', channel } : { kind: 'archive' };
}

/**
 * Steps "download" and "verify": fetches the WAR for `revision` into `paths.staging` and verifies it
 * ({@link verifyWar}) before anything touches the server. The download goes to `letto-<rev>.war.part`
 * and is renamed to `letto-<rev>.war` only once verified. Beside the partial file a small sidecar
 * `letto-<rev>.war.part.json` ({@link PartSidecar}) records where it comes from, so that a run that was
 * killed or lost the network is continued by the next run (HTTP Range + If-Range), never restarted
 * from zero and never stitched to a WAR the server has replaced meanwhile. A verified WAR already in
 * staging is reused without a request for it. When the server publishes `<war>.sha256` beside the WAR,
 * the download's SHA-256 must equal it.
 *
 * @returns the staged WAR with its revision and SHA-256.
 * @throws DownloadError (the partial file stays for the next run), VerifyError (exit 1, the server is untouched).
 */
export async function downloadRevision(ctx: Context, revision: Revision, source: WarSource): Promise<WarFile> {
  const staging = ctx.config.paths.staging;
  await ensureDir(staging, ctx.serviceUser);
  const final = join(staging, revisionWarName(revision));
  const reused = await reuseStaged(ctx, final, revision);
  if (reused) return reused;

  const url = source.kind === 'channel' ? new URL(channelFiles(source.channel).war, ctx.config.server.url).href : await archiveWarUrl(ctx, revision);
  const part = `${final}.part`;
  const sidecarPath = `${part}.json`;
  const resume = await readSidecar(sidecarPath, url, revision);
  // a full download under way is continued as it is; otherwise the delta download goes first
  if (!resume && ctx.config.server.delta) {
    const assembled = await downloadDelta(ctx, url, revision, final);
    if (assembled) return assembled;
  } else if (!ctx.config.server.delta) {
    await discardDelta(final);
  }
  const partBytes = resume ? await fileSize(part) : 0;
  if (!resume) await discardPart(part);
  if (partBytes > 0) {
    ctx.emit({ type: 'step', step: 'download', message: `Continuing the download of revision ${revision} from ${url} at byte ${partBytes} (left by an earlier run)` });
  } else {
    ctx.emit({ type: 'step', step: 'download', message: `Downloading revision ${revision} from ${url}` });
  }
  // the partial file and its sidecar belong to the service user from the start, so that a run as that
  // user can continue what a run as root left (and the other way round)
  await (await open(part, 'a', 0o640)).close();
  await giveTo(part, ctx.serviceUser);
  let result: DownloadResult;
  // the zip check follows the partial file while it is written (see WarFollower); a damaged entry
  // stops the download at once: the rest of a file already known bad is not worth fetching
  let follower: WarFollower | null = null;
  const damaged = new AbortController();
  try {
    result = await ctx.services.http.download(url, part, {
      signal: damaged.signal,
      resume: resume?.validators ?? null,
      onProgress: (progress) => ctx.emit({ type: 'progress', progress }),
      onValidators: (validators) => writeSidecar(sidecarPath, { url, revision, validators }, ctx.serviceUser),
      onRestart: () => {
        follower?.abort();
        follower = null;
      },
      onWritten: (bytes) => (follower ??= new WarFollower(part, (error) => damaged.abort(error))).written(bytes),
    });
  } catch (error) {
    (follower as WarFollower | null)?.abort();
    // a network failure keeps the partial file for the next run to continue; anything else (HTTP 404,
    // disk full, a damaged entry: a corrupt prefix cannot be healed by resuming), or a failure before
    // the first byte, leaves nothing behind
    const sidecar = error instanceof DownloadError && (await fileSize(part)) > 0 ? await readSidecar(sidecarPath, url, revision) : null;
    const keep = sidecar !== null && resumable(sidecar.validators);
    if (!keep) await discardPart(part);
    throw error;
  } finally {
    ctx.emit({ type: 'progress-done' });
  }
  if (result.resumedFrom > 0 && result.resumedFrom < partBytes) {
    ctx.emit({ type: 'warn', message: `The server's WAR changed since the earlier attempt; it was downloaded again from the start.` });
  }
  ctx.emit({ type: 'step', step: 'verify', message: `Verifying ${result.bytes} bytes, SHA-256 ${result.sha256} (zip structure, CRC-32 of every entry, WEB-INF/web.xml, revision)` });
  try {
    const [followed] = await Promise.all([(follower as WarFollower | null)?.finish(result.bytes) ?? null, checkPublishedSha256(ctx, url, result.sha256)]);
    const info = await verifyWar(part, revision, followed);
    if (info.revision === null) ctx.emit({ type: 'warn', message: `The WAR carries no WEB-INF/classes/revision.txt; trusting the revision file (${revision}).` });
  } catch (error) {
    await discardPart(part);
    throw error;
  }
  await giveTo(part, ctx.serviceUser);
  await moveFile(part, final);
  await rm(sidecarPath, { force: true });
  const transfer = summarize('full', result.bytes, result.bytes, result.transferred, null);
  ctx.emit({ type: 'step', step: 'download', message: `Revision ${revision}: ${transfer.text}` });
  return { path: final, revision, sha256: result.sha256, transfer };
}

/**
 * The delta download ({@link deltaDownload}) with the verification every download gets; null when it
 * could not be used (the reason was told in one line), then the whole file is downloaded.
 * @throws DownloadError (network: its pieces stay for the next run), local file errors.
 */
async function downloadDelta(ctx: Context, url: string, revision: Revision, final: string): Promise<WarFile | null> {
  let outcome;
  try {
    outcome = await deltaDownload(ctx, url, revision, final, (bytes) => ctx.emit({ type: 'progress', progress: { received: bytes, total: null, bytesPerSecond: 0, etaSeconds: null } }));
  } finally {
    ctx.emit({ type: 'progress-done' });
  }
  if (!outcome.ok) {
    if (!outcome.quiet) ctx.emit({ type: 'step', step: 'download', message: `Delta download not used: ${outcome.reason}; downloading the whole file.` });
    return null;
  }
  const { result } = outcome;
  ctx.emit({ type: 'step', step: 'verify', message: `Verifying the assembled WAR, ${result.bytes} bytes, SHA-256 ${result.sha256} (zip structure, CRC-32 of every entry, WEB-INF/web.xml, revision)` });
  try {
    await checkPublishedSha256(ctx, url, result.sha256);
    const info = await verifyWar(result.path, revision, result.scan);
    if (info.revision === null) ctx.emit({ type: 'warn', message: `The WAR carries no WEB-INF/classes/revision.txt; trusting the revision file (${revision}).` });
  } catch (error) {
    await discardDelta(final);
    if (!(error instanceof VerifyError)) throw error;
    ctx.emit({ type: 'warn', message: `Delta download not used: the assembled WAR fails verification (${error.message}); downloading the whole file.` });
    return null;
  }
  await giveTo(result.path, ctx.serviceUser);
  await moveFile(result.path, final);
  await discardDelta(final);
  ctx.emit({ type: 'step', step: 'download', message: `Revision ${revision}: ${result.summary.text}` });
  return { path: final, revision, sha256: result.sha256, transfer: result.summary };
}

/**
 * The sidecar of a partial download, `letto-<rev>.war.part.json`: which URL and revision the partial
 * file belongs to and the server's validators of that file (ETag/Last-Modified, length in bytes).
 */
export interface PartSidecar {
  url: string;
  revision: Revision;
  validators: Validators;
}

/** The sidecar if it exists and belongs to `url` and `revision`; null otherwise (then the partial file is not trusted). */
async function readSidecar(path: string, url: string, revision: Revision): Promise<PartSidecar | null> {
  try {
    const data = JSON.parse(await readFile(path, 'utf8')) as PartSidecar;
    if (data.url !== url || data.revision !== revision || typeof data.validators !== 'object' || data.validators === null) return null;
    return data;
  } catch {
    return null;
  }
}

/** A partial file can only be continued with a strong ETag or a Last-Modified date for If-Range (RFC 9110 §13.1.5). */
function resumable(validators: Validators): boolean {
  return Boolean((validators.etag && !validators.etag.startsWith('W/')) || validators.lastModified);
}

async function writeSidecar(path: string, data: PartSidecar, owner: Account): Promise<void> {
  await writeFileAtomically(path, `${JSON.stringify(data)}\n`, owner, 0o640);
}

async function discardPart(part: string): Promise<void> {
  await Promise.all([rm(part, { force: true }), rm(`${part}.json`, { force: true })]);
}

/**
 * Compares the download's SHA-256 with `<url>.sha256` when the server publishes one (first 64 hex
 * digits of the file, as `sha256sum` writes it). A 404 means "not published" and is fine.
 * @throws VerifyError on a mismatch.
 */
async function checkPublishedSha256(ctx: Context, url: string, sha256: string): Promise<void> {
  const published = await ctx.services.http.getOptionalText(`${url}.sha256`);
  if (published === null) return;
  const expected = /\b([0-9a-fA-F]{64})\b/.exec(published)?.[1]?.toLowerCase();
  if (!expected) {
    ctx.emit({ type: 'warn', message: `${url}.sha256 holds no SHA-256; ignored.` });
    return;
  }
  if (expected !== sha256) {
    throw new VerifyError(`The downloaded WAR's SHA-256 ${sha256} differs from the one the server publishes in ${url}.sha256 (${expected}).`, {
      hint: 'Nothing was installed. The server may have replaced the WAR meanwhile: run again in a few minutes; tell LeTTo support if it stays so.',
    });
  }
  ctx.emit({ type: 'step', step: 'verify', message: `SHA-256 matches ${url}.sha256` });
}

async function reuseStaged(ctx: Context, path: string, revision: Revision): Promise<WarFile | null> {
  if (!(await isFile(path))) return null;
  let sha256: string;
  try {
    [, sha256] = await Promise.all([verifyWar(path, revision), hashFile(path)]);
  } catch (error) {
    ctx.emit({ type: 'warn', message: `Discarding ${path}: ${error instanceof LettoError ? error.message : String(error)}` });
    await rm(path, { force: true });
    return null;
  }
  ctx.emit({ type: 'step', step: 'verify', message: `Revision ${revision} is already downloaded and verified in ${path}; not downloading it again` });
  return { path, revision, sha256 };
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
