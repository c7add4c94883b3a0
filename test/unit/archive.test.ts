import { describe, expect, it } from 'vitest';
import { parseArchiveListing, pickWarInFolder } from '../../src/war/archive.js';

const BASE = 'https://letto.at/download/letto/archiv/';

/** An Apache 2.4 autoindex page around `rows` (hrefs), with sort links and the parent link. */
function autoindex(hrefs: string[]): string {
  const rows = hrefs
    .map((h) => `<tr><td valign="top"><img src="/icons/unknown.gif" alt="[   ]"></td><td><a href="${h}">${h}</a></td><td align="right">2024-05-01 03:00  </td><td align="right"> 98M</td><td>&nbsp;</td></tr>`)
    .join('\n');
  return `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html><head><title>Index of /download/letto/archiv</title></head><body>
<h1>Index of /download/letto/archiv</h1>
<table>
<tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>
<tr><th colspan="5"><hr></th></tr>
<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/download/letto/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td><td>&nbsp;</td></tr>
${rows}
<tr><th colspan="5"><hr></th></tr>
</table>
<address>Apache/2.4.52 (Ubuntu) Server at letto.at Port 443</address>
</body></html>`;
}

describe('parseArchiveListing', () => {
  it('reads an Apache autoindex page: WARs only, sort and parent links ignored, newest first', () => {
    const html = autoindex(['letto-6870.war', 'letto-6886.war', 'letto_rev6875.war', 'letto-6880.war']);
    expect(parseArchiveListing(html, BASE)).toEqual([
      { revision: 6886, url: `${BASE}letto-6886.war`, kind: 'war' },
      { revision: 6880, url: `${BASE}letto-6880.war`, kind: 'war' },
      { revision: 6875, url: `${BASE}letto_rev6875.war`, kind: 'war' },
      { revision: 6870, url: `${BASE}letto-6870.war`, kind: 'war' },
    ]);
  });

  it('reads per-revision folders (6880/)', () => {
    const html = autoindex(['6870/', '6880/', 'rev-6875/']);
    expect(parseArchiveListing(html, BASE)).toEqual([
      { revision: 6880, url: `${BASE}6880/`, kind: 'folder' },
      { revision: 6875, url: `${BASE}rev-6875/`, kind: 'folder' },
      { revision: 6870, url: `${BASE}6870/`, kind: 'folder' },
    ]);
  });

  it.each([
    ['../../etc/passwd.war'],
    ['../6999.war'],
    ['../../../6999/'],
    ['%2e%2e/6999.war'],
    ['%2e%2e/'],
    ['%2E%2E%2F6999.war'],
    ['..%2f6999.war'],
    ['a%2Fletto-6999.war'],
    ['..\\..\\letto-6999.war'],
    ['sub/letto-6999.war'],
    ['6999/letto.war'],
    ['https://evil.example/download/letto/archiv/letto-6999.war'],
    ['//evil.example/download/letto/archiv/letto-6999.war'],
    ['http://letto.at/download/letto/archiv/letto-6999.war'], // other origin (scheme)
    ['https://letto.at:8443/download/letto/archiv/letto-6999.war'], // other origin (port)
    ['/download/letto/letto-6999.war'], // above the archive
    ['/other/archiv/letto-6999.war'],
    ['letto-6999.war?download=1'],
    ['letto-6999.war#x'],
    ['?C=N;O=D&x=6999.war'],
    ['.letto-6999.war'],
    ['.6999/'],
    ['letto-6999.war.part'],
    ['notes-6999.txt'],
    ['letto-6999.zip'],
    ['%zz-6999.war'], // malformed escape
    ['http://[broken-6999.war'], // invalid URL
    ['mailto:admin-6999@letto.at'],
    ['javascript:alert(6999)'],
  ])('ignores %s', (href) => {
    const html = autoindex([href, 'letto-6880.war']);
    expect(parseArchiveListing(html, BASE).map((e) => e.revision)).toEqual([6880]);
  });

  it.each([['letto.war'], ['letto-latest.war'], ['README'], ['folder/'], ['letto-12.war'], ['v1/']])('ignores %s (no revision of 3+ digits)', (href) => {
    expect(parseArchiveListing(autoindex([href]), BASE)).toEqual([]);
  });

  it('accepts same-origin absolute and root-relative links into the archive folder', () => {
    const html = autoindex([`${BASE}letto-6860.war`, '/download/letto/archiv/letto-6865.war', './letto-6866.war']);
    expect(parseArchiveListing(html, BASE).map((e) => e.url)).toEqual([`${BASE}letto-6866.war`, `${BASE}letto-6865.war`, `${BASE}letto-6860.war`]);
  });

  it('one entry per revision: duplicates collapse, a WAR wins over a folder in either order', () => {
    const html = autoindex(['6880/', 'letto-6880.war', 'letto-6880.war', 'letto-6886.war', '6886/', '6870/', '6870/']);
    expect(parseArchiveListing(html, BASE)).toEqual([
      { revision: 6886, url: `${BASE}letto-6886.war`, kind: 'war' },
      { revision: 6880, url: `${BASE}letto-6880.war`, kind: 'war' },
      { revision: 6870, url: `${BASE}6870/`, kind: 'folder' },
    ]);
  });

  it('takes the last number of 3+ digits in the name as the revision', () => {
    const html = autoindex(['letto-2024-6880.war', 'build123-rev6881.war']);
    expect(parseArchiveListing(html, BASE).map((e) => e.revision)).toEqual([6881, 6880]);
  });

  it('handles single quotes, entities, upper-case .WAR and encoded names', () => {
    const html = `<a href='letto-6880.war'>a</a> <A HREF="letto%2D6881.war">b</A> <a href="letto-6882.WAR">c</a> <a href="letto-6883.war?a=1&amp;b=2">d</a>`;
    expect(parseArchiveListing(html, BASE).map((e) => e.revision)).toEqual([6882, 6881, 6880]);
  });

  it('an empty or non-HTML body gives no entries', () => {
    expect(parseArchiveListing('', BASE)).toEqual([]);
    expect(parseArchiveListing('6886\r\n', BASE)).toEqual([]);
  });
});

describe('pickWarInFolder', () => {
  const FOLDER = `${BASE}6880/`;
  it('prefers letto.war', () => {
    expect(pickWarInFolder(autoindex(['letto-6880.war', 'letto.war']), FOLDER)).toBe(`${FOLDER}letto.war`);
  });
  it('takes the only WAR', () => {
    expect(pickWarInFolder(autoindex(['letto-6880.war', 'notes.txt']), FOLDER)).toBe(`${FOLDER}letto-6880.war`);
  });
  it('null when there is none or several that cannot be told apart', () => {
    expect(pickWarInFolder(autoindex(['notes.txt']), FOLDER)).toBeNull();
    expect(pickWarInFolder(autoindex(['a.war', 'b.war']), FOLDER)).toBeNull();
  });
  it('never leaves the folder', () => {
    expect(pickWarInFolder(autoindex(['../letto.war', 'https://evil.example/letto.war', '%2e%2e/letto.war']), FOLDER)).toBeNull();
  });

  it('ignores malformed hrefs instead of throwing', () => {
    expect(pickWarInFolder(autoindex(['%zz.war', 'http://[', 'letto.war']), FOLDER)).toBe(`${FOLDER}letto.war`);
  });
});
