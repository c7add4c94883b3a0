/**
 * Proxies as admins set them: HTTPS_PROXY through a real CONNECT proxy on loopback (the `proxy`
 * package), and NO_PROXY to go around it.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProxy, type ProxyServer } from 'proxy';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpClient } from '../../src/system/http.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';

let root: string;
let server: DownloadServer;
let proxy: ProxyServer;
let proxyUrl: string;
const connects: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-proxy-'));
  await populateDownloadRoot(root, { stable: 6886, daily: 6887 });
  server = await startDownloadServer({ root, tls: true, user: 'letto', password: 'pw' });
  proxy = createProxy(createServer());
  proxy.on('connect', (req: { url?: string }) => connects.push(req.url ?? ''));
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await server?.close();
  proxy?.closeAllConnections();
  await new Promise((resolve) => proxy?.close(resolve));
  await rm(root, { recursive: true, force: true });
});

beforeEach(() => {
  connects.length = 0;
  server.requests.length = 0;
});

async function fetchWar(env: NodeJS.ProcessEnv): Promise<Buffer> {
  const http = createHttpClient({ serverUrl: server.url, credentials: { user: 'letto', password: 'pw' }, extraCaPem: server.caPem, env });
  const dest = join(root, `out-${Date.now()}.war`);
  try {
    const result = await http.download(`${server.url}letto-stable.war`, dest);
    const bytes = await readFile(dest);
    expect(result.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    return bytes;
  } finally {
    await http.close();
  }
}

describe('proxies from the environment', () => {
  it('HTTPS_PROXY: the download tunnels through the proxy (CONNECT), TLS still verified end to end', async () => {
    const port = new URL(server.url).port;
    const bytes = await fetchWar({ HTTPS_PROXY: proxyUrl });
    expect(bytes.equals(await readFile(join(root, 'letto-stable.war')))).toBe(true);
    expect(connects).toEqual([`127.0.0.1:${port}`]);
    expect(server.requests[0]!.authorized).toBe(true);
    expect(server.bodyBytes()).toBe(bytes.length);
  });

  it('NO_PROXY: a listed host is reached directly', async () => {
    const bytes = await fetchWar({ https_proxy: proxyUrl, NO_PROXY: 'localhost,127.0.0.1' });
    expect(bytes.length).toBeGreaterThan(0);
    expect(connects).toEqual([]);
    expect(server.requests).toHaveLength(1);
  });

  it('a proxy that cannot be reached is a clear, retried network error', async () => {
    const retries: string[] = [];
    const http = createHttpClient({
      serverUrl: server.url,
      credentials: null,
      extraCaPem: server.caPem,
      env: { HTTPS_PROXY: 'http://127.0.0.1:9' },
      retry: { retries: 1, wait: 0.01, maxWait: 1 },
      onRetry: (message) => retries.push(message),
    });
    try {
      await expect(http.getText(`${server.url}stable-revision.txt`)).rejects.toThrow(/Cannot reach .*ECONNREFUSED/);
      expect(retries).toEqual([expect.stringMatching(/attempt 1 failed .*ECONNREFUSED.*; 1 more to go/)]);
      expect(server.requests).toEqual([]);
    } finally {
      await http.close();
    }
  });
});
