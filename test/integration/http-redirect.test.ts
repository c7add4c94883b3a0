/**
 * Credentials and redirects, against two real loopback servers: 127.0.0.1 and localhost are different
 * origins, so a redirect from one to the other is a cross-host redirect.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient, type HttpClient } from '../../src/system/http.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';

describe('HTTP client: credentials never cross hosts', () => {
  let origin: DownloadServer;
  let other: DownloadServer;
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'letto-redirect-'));
    await populateDownloadRoot(root, { stable: 6886, daily: 6887 });
    other = await startDownloadServer({ root, tls: true });
    const otherUrl = other.url.replace('127.0.0.1', 'localhost');
    origin = await startDownloadServer({
      root,
      tls: true,
      user: 'letto',
      password: 'pw',
      onRequest(req, res) {
        if (req.url?.endsWith('/elsewhere/stable-revision.txt')) {
          res.writeHead(302, { location: `${otherUrl}stable-revision.txt` }).end();
          return true;
        }
        if (req.url?.endsWith('/same/stable-revision.txt')) {
          res.writeHead(301, { location: '/download/letto/stable-revision.txt' }).end();
          return true;
        }
        return false;
      },
    });
  });

  afterAll(async () => {
    await origin?.close();
    await other?.close();
  });

  /** Runs `use` with a client configured for `origin` (credentials and CA), then closes it. */
  async function withClient<T>(use: (http: HttpClient) => Promise<T>): Promise<T> {
    const http = createHttpClient({ serverUrl: origin.url, credentials: { user: 'letto', password: 'pw' }, extraCaPem: origin.caPem });
    try {
      return await use(http);
    } finally {
      await http.close();
    }
  }

  it('a redirect to another host is followed without the Authorization header', async () => {
    expect((await withClient((http) => http.getText(`${origin.url}elsewhere/stable-revision.txt`))).trim()).toBe('6886');
    expect(other.requests).toHaveLength(1);
    expect(other.requests[0]!.headers.authorization).toBeUndefined();
    expect(origin.requests.at(-1)!.headers.authorization).toMatch(/^Basic /);
  });

  it('a redirect on the same origin keeps the credentials', async () => {
    expect((await withClient((http) => http.getText(`${origin.url}same/stable-revision.txt`))).trim()).toBe('6886');
    const last = origin.requests.at(-1)!;
    expect(last.path).toBe('/download/letto/stable-revision.txt');
    expect(last.authorized).toBe(true);
  });

  it('without server.ca_file the self-signed certificate is refused', async () => {
    const http = createHttpClient({ serverUrl: origin.url, credentials: null });
    try {
      await expect(http.getText(`${origin.url}stable-revision.txt`)).rejects.toThrow(/Cannot reach .*certificate/i);
    } finally {
      await http.close();
    }
  });

  it('download streams to disk and returns length and SHA-256', async () => {
    const dest = join(root, 'out.war');
    const result = await withClient((http) => http.download(`${origin.url}letto-stable.war`, dest));
    const bytes = await readFile(dest);
    expect(result.bytes).toBe(bytes.length);
    expect(result.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  });
});
