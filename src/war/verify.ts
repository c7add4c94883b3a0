import { open as openFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import { VerifyError } from '../errors.js';
import type { FollowedScan } from './follow.js';
import { parseRevision, WAR_REVISION_ENTRY, type Revision } from '../revision.js';

/** What verification found in a WAR: entry count and the revision in `WEB-INF/classes/revision.txt` (null if absent). */
export interface WarInfo {
  entries: number;
  revision: Revision | null;
}

const MAX_REVISION_ENTRY = 4096;

/**
 * Verifies a WAR before it may touch the server: a well-formed zip (central directory, sizes), every
 * entry's data inflates and matches its CRC-32, `WEB-INF/web.xml` is present (a web application), and
 * `WEB-INF/classes/revision.txt`, when present, holds a revision; when `expected` is given it must equal it.
 *
 * @param path the WAR on disk; read once, streamed entry by entry (memory stays small).
 * @param followed what a {@link WarFollower} checked while the WAR was downloaded: then only the central
 *   directory is read, and every entry it lists must be one the follower checked (same offset, name,
 *   CRC-32 and sizes), so the guarantees are the same without a second pass over the data.
 * @throws VerifyError naming what is wrong (exit 1; nothing was installed).
 */
export async function verifyWar(path: string, expected?: Revision, followed?: FollowedScan | null): Promise<WarInfo> {
  await refuseNonZip(path);
  const info = await scanWar(path, true, followed ?? undefined);
  if (!info.hasWebXml) {
    throw new VerifyError(`${path} is a zip but not a web application: WEB-INF/web.xml is missing.`, {
      hint: 'The download server sent the wrong file. Nothing was installed; tell LeTTo support if it stays so.',
    });
  }
  if (expected !== undefined && info.revision !== null && info.revision !== expected) {
    throw new VerifyError(
      `${path} carries revision ${info.revision}, but revision ${expected} was expected (the server may have replaced the WAR between the two downloads).`,
      { hint: 'Nothing was installed. Run again in a few minutes.' },
    );
  }
  return { entries: info.entries, revision: info.revision };
}

/**
 * Reads the revision of an installed WAR from `WEB-INF/classes/revision.txt` without checking every
 * entry. Returns null when the file is missing, not a zip, or has no readable revision.
 */
export async function readWarRevision(path: string): Promise<Revision | null> {
  try {
    return (await scanWar(path, false)).revision;
  } catch {
    return null;
  }
}

interface Scan {
  entries: number;
  hasWebXml: boolean;
  revision: Revision | null;
}

function scanWar(path: string, checkAll: boolean, followed?: FollowedScan): Promise<Scan> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: true, validateEntrySizes: true, strictFileNames: false }, (openError, zip) => {
      if (openError || !zip) return reject(damaged(path, openError));
      const scan: Scan = { entries: 0, hasWebXml: false, revision: null };
      let failed = false;
      const fail = (error: unknown) => {
        if (failed) return;
        failed = true;
        zip.close();
        reject(error instanceof VerifyError ? error : damaged(path, error));
      };
      zip.on('error', fail);
      zip.on('end', () => {
        if (failed) return;
        if (followed && followed.entries.size !== scan.entries) {
          return fail(new VerifyError(`${path} is damaged: its central directory lists ${scan.entries} entries, but the file holds ${followed.entries.size}.`, { hint: retryHint }));
        }
        resolve(scan);
      });
      zip.on('entry', (entry: yauzl.Entry) => {
        scan.entries++;
        const name = entry.fileName;
        if (name === 'WEB-INF/web.xml') scan.hasWebXml = true;
        const isRevision = name === WAR_REVISION_ENTRY;
        if (followed) {
          // the data was checked while it streamed in: the central directory must describe exactly that
          const local = followed.entries.get(entry.relativeOffsetOfLocalHeader);
          if (!local || local.name !== name || local.crc32 >>> 0 !== entry.crc32 >>> 0 || local.compressedSize !== entry.compressedSize || local.uncompressedSize !== entry.uncompressedSize) {
            return fail(new VerifyError(`${path} is damaged: the central directory entry ${name} does not match the entry's local header and data.`, { hint: retryHint }));
          }
          if (isRevision && followed.revisionText !== null) {
            const parsed = parseRevision(followed.revisionText);
            if (!parsed.ok) return fail(new VerifyError(`${path}: ${WAR_REVISION_ENTRY} is not usable: ${parsed.reason}.`, { hint: retryHint }));
            scan.revision = parsed.revision;
          }
          return zip.readEntry();
        }
        if (name.endsWith('/') || (!checkAll && !isRevision)) return zip.readEntry();
        zip.openReadStream(entry, (streamError, stream) => {
          if (streamError || !stream) return fail(streamError);
          let crc = 0;
          const kept: Buffer[] = [];
          let keptBytes = 0;
          stream.on('data', (chunk: Buffer) => {
            crc = crc32(chunk, crc);
            if (isRevision && keptBytes < MAX_REVISION_ENTRY) {
              kept.push(chunk);
              keptBytes += chunk.length;
            }
          });
          stream.on('error', fail);
          stream.on('end', () => {
            if (crc >>> 0 !== entry.crc32 >>> 0) {
              return fail(new VerifyError(`${path} is damaged: entry ${name} fails its CRC-32 check.`, { hint: retryHint }));
            }
            if (isRevision) {
              const parsed = parseRevision(Buffer.concat(kept).toString('utf8'));
              if (!parsed.ok) {
                return fail(new VerifyError(`${path}: ${WAR_REVISION_ENTRY} is not usable: ${parsed.reason}.`, { hint: retryHint }));
              }
              scan.revision = parsed.revision;
            }
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

const retryHint = 'Nothing was installed. Delete the file and download again; if it keeps failing, tell LeTTo support.';

function damaged(path: string, error: unknown): VerifyError {
  const reason = error instanceof Error ? error.message : String(error);
  return new VerifyError(`${path} is not a complete, well-formed WAR (zip): ${reason}.`, { hint: retryHint, cause: error });
}

/** Gives a clear message when the "WAR" is an HTML page or empty, before the zip reader's terse one. */
async function refuseNonZip(path: string): Promise<void> {
  const handle = await openFile(path, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    if (bytesRead === 0) throw new VerifyError(`${path} is empty, not a WAR.`, { hint: retryHint });
    const text = head.subarray(0, bytesRead).toString('latin1');
    if (/^\s*</.test(text)) {
      throw new VerifyError(`${path} is an HTML page, not a WAR (the download server sent an error page).`, {
        hint: 'Check server.url and the credentials; nothing was installed.',
      });
    }
    if (!text.startsWith('PK')) throw new VerifyError(`${path} is not a zip file, so not a WAR.`, { hint: retryHint });
  } finally {
    await handle.close();
  }
}
