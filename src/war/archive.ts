import type { Revision } from '../revision.js';

/** One revision found in the server's `archiv/` listing, with the URL of its WAR or of its folder. */
export interface ArchiveEntry {
  revision: Revision;
  /** Absolute URL: a `.war` file, or a per-revision folder (ends with `/`) that holds one. */
  url: string;
  kind: 'war' | 'folder';
}

/**
 * Reads an `archiv/` listing (an autoindex HTML page: the naming of its files is not documented, see
 * DOMAIN.md). Every `href` is considered; an entry counts when it is a plain name inside the listed
 * folder (no `..`, no other host, no path below it) that is either a `.war` file or a folder, and whose
 * name holds a number of 3 or more digits; the last such number is the revision
 * (`letto-6880.war`, `letto_rev6880.war`, `6880/`). Everything else (sort links, parent folder,
 * names that try path traversal) is ignored. Newest revision first; one entry per revision, a WAR
 * file preferred over a folder.
 *
 * @param html the listing's body; @param baseUrl the listing's URL, ending in `/`.
 */
export function parseArchiveListing(html: string, baseUrl: string): ArchiveEntry[] {
  const base = new URL(baseUrl);
  const found = new Map<Revision, ArchiveEntry>();
  for (const match of html.matchAll(/href\s*=\s*["']([^"']+)["']/gi)) {
    const href = decodeEntities(match[1]!);
    let url: URL;
    try {
      url = new URL(href, base);
    } catch {
      continue;
    }
    if (url.origin !== base.origin || url.search || url.hash || !url.pathname.startsWith(base.pathname)) continue;
    let name: string;
    try {
      name = decodeURIComponent(url.pathname.slice(base.pathname.length));
    } catch {
      continue;
    }
    const isFolder = name.endsWith('/');
    const bare = isFolder ? name.slice(0, -1) : name;
    if (!bare || bare.includes('/') || bare.includes('\\') || bare === '.' || bare === '..' || bare.startsWith('.')) continue;
    if (!isFolder && !bare.toLowerCase().endsWith('.war')) continue;
    const numbers = bare.match(/\d{3,9}/g);
    const revision = numbers ? Number(numbers[numbers.length - 1]) : NaN;
    if (!Number.isSafeInteger(revision) || revision <= 0) continue;
    const entry: ArchiveEntry = { revision, url: url.href, kind: isFolder ? 'folder' : 'war' };
    const previous = found.get(revision);
    if (!previous || (previous.kind === 'folder' && entry.kind === 'war')) found.set(revision, entry);
  }
  return [...found.values()].sort((a, b) => b.revision - a.revision);
}

/**
 * Picks the WAR inside a per-revision folder's listing: `letto.war` if present, else the only `.war`.
 * Returns null when there is none or several that cannot be told apart.
 */
export function pickWarInFolder(html: string, folderUrl: string): string | null {
  const base = new URL(folderUrl);
  const wars: string[] = [];
  for (const match of html.matchAll(/href\s*=\s*["']([^"']+)["']/gi)) {
    let url: URL;
    let name: string;
    try {
      url = new URL(decodeEntities(match[1]!), base);
      name = decodeURIComponent(url.pathname.slice(base.pathname.length));
    } catch {
      continue; // a malformed href is skipped, as in parseArchiveListing
    }
    if (url.origin !== base.origin || url.search || !url.pathname.startsWith(base.pathname)) continue;
    if (name && !name.includes('/') && !name.startsWith('.') && name.toLowerCase().endsWith('.war')) wars.push(url.href);
  }
  const unique = [...new Set(wars)];
  return unique.find((u) => u.endsWith('/letto.war')) ?? (unique.length === 1 ? unique[0]! : null);
}

function decodeEntities(text: string): string {
  return text.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}
