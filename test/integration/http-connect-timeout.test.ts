/**
 * The connect timeout of the node:https transport: a real loopback TCP server that accepts the
 * connection but never answers the TLS handshake. The transport counts TCP + TLS until
 * 'secureConnect' as connecting, so each attempt is given up after `connect_timeout`, and the run
 * after about connect_timeout × (retries + 1) plus the retry waits.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DownloadError, ExitCode } from '../../src/errors.js';
import { createHttpClient } from '../../src/system/http.js';
import { makeServerLayout, runCli, writeConfig } from '../support/cli.js';
import { getTestCertificate } from '../support/download-server.js';

const CONNECT_TIMEOUT = 1;
const RETRIES = 1;

let server: Server;
let url: string;
let caPem: string;
/** Connections the silent server accepted (each attempt opens one). */
let connections = 0;
const sockets = new Set<Socket>();

beforeAll(async () => {
  caPem = (await getTestCertificate()).cert;
  // accepts TCP, reads the ClientHello, never answers it
  server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  url = `https://127.0.0.1:${port}/download/letto/`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => server?.close(resolve));
});

beforeEach(() => {
  connections = 0;
});

describe('connect timeout (TCP accepted, TLS handshake never answered)', () => {
  it('HttpClient.download gives each attempt connect_timeout, retries, then fails naming the timeout and the host', async () => {
    const work = await mkdtemp(join(tmpdir(), 'letto-connect-'));
    const retries: string[] = [];
    const http = createHttpClient({
      serverUrl: url,
      credentials: { user: 'letto', password: 'geheim' },
      extraCaPem: caPem,
      connectTimeout: CONNECT_TIMEOUT,
      idleTimeout: 30,
      retry: { retries: RETRIES, wait: 0.05, maxWait: 0.1 },
      onRetry: (message) => retries.push(message),
    });
    const started = performance.now();
    try {
      const error = await http.download(`${url}letto-stable.war`, join(work, 'out.war.part')).catch((e: unknown) => e);
      const seconds = (performance.now() - started) / 1000;
      expect(error).toBeInstanceOf(DownloadError);
      expect((error as DownloadError).message).toMatch(/127\.0\.0\.1:\d+/);
      expect((error as DownloadError).message).toMatch(/connect timeout \(1 s\)/);
      expect((error as DownloadError).hint).toMatch(/server\.connect_timeout/);
      expect(connections).toBe(RETRIES + 1);
      expect(retries).toHaveLength(RETRIES);
      expect(retries[0]).toMatch(/attempt 1 failed \(.*connect timeout/);
      // each attempt waited for the whole connect timeout, and not much longer: not the idle timeout
      // (30 s), and not twice the connect timeout (a socket's own inactivity timer is postponed once
      // while the request is queued behind the handshake; the transport has a timer of its own)
      expect(seconds).toBeGreaterThanOrEqual(CONNECT_TIMEOUT * (RETRIES + 1) * 0.95);
      expect(seconds).toBeLessThan(CONNECT_TIMEOUT * (RETRIES + 1) * 1.5 + 0.5);
      expect(await readdir(work)).toEqual([]);
    } finally {
      await http.close();
      await rm(work, { recursive: true, force: true });
    }
  });

  it('through HTTPS_PROXY: a proxy that accepts the connection and never answers CONNECT is given up after connect_timeout too', async () => {
    const http = createHttpClient({
      serverUrl: 'https://letto.example.org/download/letto/',
      credentials: null,
      connectTimeout: CONNECT_TIMEOUT,
      idleTimeout: 30,
      retry: { retries: RETRIES, wait: 0.05, maxWait: 0.1 },
      env: { HTTPS_PROXY: `http://127.0.0.1:${new URL(url).port}` },
    });
    const started = performance.now();
    try {
      const error = await http.getText('https://letto.example.org/download/letto/stable-revision.txt').catch((e: unknown) => e);
      const seconds = (performance.now() - started) / 1000;
      expect(error).toBeInstanceOf(DownloadError);
      expect((error as DownloadError).message).toMatch(/Cannot reach https:\/\/letto\.example\.org\/download\/letto\/stable-revision\.txt through the proxy http:\/\/127\.0\.0\.1:\d+ \(HTTPS_PROXY\): .*timeout/i);
      expect((error as DownloadError).hint).toMatch(/No answer in time through the proxy: the tunnel to letto\.example\.org gets server\.connect_timeout.*\(set by HTTPS_PROXY in the environment\)/);
      expect(connections).toBe(RETRIES + 1);
      // undici's timers are coarse (about 1 s); its defaults held each attempt for 300 s
      expect(seconds).toBeGreaterThanOrEqual(CONNECT_TIMEOUT * (RETRIES + 1) * 0.95);
      expect(seconds).toBeLessThan(CONNECT_TIMEOUT * (RETRIES + 1) * 2 + 2);
    } finally {
      await http.close();
    }
  });

  it('letto-update download: exit 1 after the retries, the message names the timeout and the host, staging stays empty', async () => {
    const layout = await makeServerLayout({ revision: 6880 });
    try {
      const config = await writeConfig(layout, { url, caPem, user: 'letto' }, { server: { connect_timeout: CONNECT_TIMEOUT, retries: RETRIES, retry_wait: 0.05, idle_timeout: 30 } });
      const started = performance.now();
      const run = await runCli(['--config', config, 'download']);
      const seconds = (performance.now() - started) / 1000;
      expect(run.exitCode).toBe(ExitCode.failed);
      expect(run.stderr).toMatch(/warning: .*attempt 1 failed \(.*connect timeout \(1 s\)/);
      expect(run.stderr).toMatch(/error: Cannot reach https:\/\/127\.0\.0\.1:\d+\/download\/letto\/\S+: connect timeout \(1 s\)/);
      expect(run.stderr).toMatch(/server\.connect_timeout/);
      expect(run.stderr).not.toContain('geheim');
      expect(connections).toBe(RETRIES + 1);
      expect(seconds).toBeGreaterThanOrEqual(CONNECT_TIMEOUT * (RETRIES + 1) * 0.95);
      expect(seconds).toBeLessThan(CONNECT_TIMEOUT * (RETRIES + 1) * 2 + 5); // the CLI's start-up included
      expect(await readdir(layout.staging).catch(() => [])).toEqual([]);
    } finally {
      await layout.cleanup();
    }
  });
});
