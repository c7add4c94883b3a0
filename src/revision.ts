/** A LeTTo revision: a plain increasing integer (seen: 5714 … 6886), see DOMAIN.md. */
export type Revision = number;

/** The two channels of the download server. */
export type Channel = 'stable' | 'daily';

/** Result of reading a revision file: the revision, or why the text is not one. */
export type RevisionParse = { ok: true; revision: Revision } | { ok: false; reason: string };

/**
 * Parses a revision file (`daily-revision.txt`, `stable-revision.txt`, `WEB-INF/classes/revision.txt`):
 * first line, spaces and CR stripped, must be a positive integer (LeTTo's own scripts read it that way,
 * see DOMAIN.md). An HTML page, an empty body or anything else gives `{ ok: false, reason }`.
 */
export function parseRevision(text: string): RevisionParse {
  const body = text.replace(/^\uFEFF/, '');
  const first = (body.split('\n')[0] ?? '').replace(/[\s\r]/g, '');
  if (/^[0-9]{1,9}$/.test(first) && Number(first) > 0) return { ok: true, revision: Number(first) };
  if (body.trim() === '') return { ok: false, reason: 'the file is empty' };
  if (/^\s*</.test(body)) return { ok: false, reason: 'it is an HTML page, not a revision number' };
  return { ok: false, reason: `its first line "${first.slice(0, 40)}" is not a revision number` };
}

/** File names of a channel on the download server (see DOMAIN.md, "The download server"). */
export function channelFiles(channel: Channel): { war: string; revision: string } {
  return { war: `letto-${channel}.war`, revision: `${channel}-revision.txt` };
}

/** File name of a revision's WAR in the staging and backup folders: `letto-<revision>.war`. */
export function revisionWarName(revision: Revision): string {
  return `letto-${revision}.war`;
}

/** The revision in a {@link revisionWarName} (`letto-6886.war` → 6886), or null for any other name. */
export function parseRevisionWarName(name: string): Revision | null {
  const match = /^letto-(\d+)\.war$/.exec(name);
  return match ? Number(match[1]) : null;
}

/** Path of the revision resource inside a LeTTo WAR (inferred, see DOMAIN.md). */
export const WAR_REVISION_ENTRY = 'WEB-INF/classes/revision.txt';

export type WarSource = { kind: 'channel'; channel: Channel } | { kind: 'archive' };
