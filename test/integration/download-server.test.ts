import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { openPromise } from 'yauzl';
import type { Entry } from 'yauzl';
import { buildWar } from '../../fixtures/build-war.js';
import { populateDownloadRoot, startDownloadServer } from '../support/download-server.js';
import type { DownloadServer } from '../support/download-server.js';

const USER = 'letto';
const PASSWORD = 'geheim';
const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

/** Reads all entries of a zip: name → content. */
async function readZip(path: string): Promise<Map<string, Buffer>> {
  const zip = await openPromise(path, { lazyEntries: true });
  const out = new Map<string, Buffer>();
  try {
    for await (const entry of zip.eachEntry() as AsyncIterable<Entry>) {
      const stream: Readable = await zip.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      out.set(entry.fileName, Buffer.concat(chunks));
    }
  } finally {
    zip.close();
  }
  return out;
}

describe('download server (TLS + Basic auth)', () => {
  let dir: string;
  let server: DownloadServer;
  let agent: Agent;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'letto-dl-'));
    await populateDownloadRoot(dir, { stable: 6880, daily: 6886, archive: [6870, 6875, 6880], brokenRevisions: [6875] });
    server = await startDownloadServer({ root: dir, tls: true, user: USER, password: PASSWORD });
    agent = new Agent({ connect: { ca: server.caPem } });
  });

  afterAll(async () => {
    await agent?.close();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves the revision file over verified TLS with correct auth', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/download\/letto\/$/);
    const res = await request(`${server.url}daily-revision.txt`, {
      dispatcher: agent,
      headers: { authorization: basic(USER, PASSWORD) },
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('6886\r\n');
    const last = server.requests.at(-1);
    expect(last).toMatchObject({ method: 'GET', path: '/download/letto/daily-revision.txt', authorized: true });
  });

  it('answers 401 with a Basic challenge without or with wrong credentials', async () => {
    for (const headers of [{}, { authorization: basic(USER, 'falsch') }]) {
      const res = await request(`${server.url}stable-revision.txt`, { dispatcher: agent, headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Basic realm="LeTTo Download"');
      const body = await res.body.text();
      expect(body).toContain('<html>');
      expect(body).not.toContain('6880');
      expect(server.requests.at(-1)?.authorized).toBe(false);
    }
  });

  it('lists archiv/ like Apache autoindex', async () => {
    const res = await request(`${server.url}archiv/`, {
      dispatcher: agent,
      headers: { authorization: basic(USER, PASSWORD) },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const html = await res.body.text();
    for (const rev of [6870, 6875, 6880]) {
      expect(html).toContain(`<a href="letto-${rev}.war">letto-${rev}.war</a>`);
    }
    expect(html).toContain('?C=N;O=D');
    expect(html).toContain('Parent Directory');
  });

  it('downloads a WAR with the right Content-Length, and it is a zip', async () => {
    const size = (await stat(join(dir, 'letto-stable.war'))).size;
    const res = await request(`${server.url}letto-stable.war`, {
      dispatcher: agent,
      headers: { authorization: basic(USER, PASSWORD) },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(size));
    expect(res.headers['etag']).toBeTypeOf('string');
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(body.length).toBe(size);
    expect(body.subarray(0, 2).toString('latin1')).toBe('PK');
  });

  it('answers 404 for missing files and refuses path traversal', async () => {
    const auth = { authorization: basic(USER, PASSWORD) };
    const missing = await request(`${server.url}letto-9999.war`, { dispatcher: agent, headers: auth });
    expect(missing.statusCode).toBe(404);
    expect(await missing.body.text()).toContain('Not Found');
    const trav = await request(`${server.url}archiv/%2e%2e/%2e%2e/%2e%2e/etc/passwd`, { dispatcher: agent, headers: auth });
    expect([400, 404]).toContain(trav.statusCode);
    await trav.body.dump();
  });

  it('rejects a client that does not trust the self-signed certificate', async () => {
    await expect(request(`${server.url}daily-revision.txt`)).rejects.toThrow();
  });
});

describe('buildWar', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'letto-war-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes a zip with web.xml, revision.txt and test.jsf', async () => {
    const path = join(dir, 'ok.war');
    await buildWar(path, { revision: 6886 });
    const entries = await readZip(path);
    expect(entries.get('WEB-INF/web.xml')?.toString('utf8')).toContain('jakarta.ee/xml/ns/jakartaee');
    expect(entries.get('WEB-INF/web.xml')?.toString('utf8')).not.toContain('<listener>');
    expect(entries.get('WEB-INF/classes/revision.txt')?.toString('utf8')).toBe('6886\r\n');
    expect(entries.get('test.jsf')?.toString('utf8')).toContain('LeTTo test page revision 6886');
  });

  it('omits revision.txt for revision null and breaks web.xml when unhealthy', async () => {
    const path = join(dir, 'broken.war');
    await buildWar(path, { revision: null, healthy: false });
    const entries = await readZip(path);
    expect(entries.has('WEB-INF/classes/revision.txt')).toBe(false);
    expect(entries.has('test.jsf')).toBe(true);
    expect(entries.get('WEB-INF/web.xml')?.toString('utf8')).toContain('<listener-class>at.letto.DoesNotExist</listener-class>');
  });

  it('pads with incompressible stored bytes', async () => {
    const path = join(dir, 'big.war');
    const pad = 3 * 1024 * 1024 + 17;
    await buildWar(path, { revision: 1, padBytes: pad });
    expect((await stat(path)).size).toBeGreaterThan(pad);
    const entries = await readZip(path);
    expect(entries.get('WEB-INF/lib/padding.bin')?.length).toBe(pad);
  });
});
