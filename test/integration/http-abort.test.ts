/**
 * `HttpClient.download` with an AbortSignal (how the zip check stops a download it found damaged):
 * the response is dropped at once, the signal's reason is what the download rejects with, and no
 * retry follows, neither while the body streams nor while waiting before a retry.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VerifyError } from '../../src/errors.js';
import { createHttpClient, type HttpClient } from '../../src/system/http.js';
import { startDownloadServer, type DownloadServer } from '../support/download-server.js';

const SIZE = 2 * 1024 * 1024;
let root: string;
let server: DownloadServer;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-abort-'));
  await writeFile(join(root, 'file.war'), randomBytes(SIZE));
  server = await startDownloadServer({ root, tls: true });
});

afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
});

beforeEach(() => {
  server.requests.length = 0;
  server.faults.length = 0;
});

function client(): HttpClient {
  // a long idle timeout and long retry waits: only the signal can end these downloads quickly
  return createHttpClient({ serverUrl: server.url, credentials: null, extraCaPem: server.caPem, idleTimeout: 30, retry: { retries: 3, wait: 10, maxWait: 10 }, env: {} });
}

const warGets = () => server.requests.filter((r) => r.path.endsWith('/file.war'));

describe('download with an AbortSignal', () => {
  it('an abort while the body streams rejects with the reason at once, without a retry', async () => {
    server.faults.push({ kind: 'stall', after: 256 * 1024 });
    const http = client();
    const controller = new AbortController();
    const reason = new VerifyError('entry x fails its CRC-32 check');
    const dest = join(root, 'out-stream.part');
    try {
      const started = performance.now();
      const download = http.download(`${server.url}file.war`, dest, {
        signal: controller.signal,
        onWritten: (bytes) => {
          if (bytes >= 256 * 1024) controller.abort(reason);
        },
      });
      await expect(download).rejects.toBe(reason);
      expect(performance.now() - started).toBeLessThan(5000);
      expect(warGets()).toHaveLength(1);
      expect((await stat(dest)).size).toBe(256 * 1024);
    } finally {
      await http.close();
    }
  });

  it('an abort while waiting before a retry rejects with the reason at once', async () => {
    server.faults.push({ kind: 'status', status: 503 });
    const http = client();
    const controller = new AbortController();
    const reason = new VerifyError('damaged');
    try {
      const started = performance.now();
      const download = http.download(`${server.url}file.war`, join(root, 'out-wait.part'), { signal: controller.signal });
      setTimeout(() => controller.abort(reason), 300);
      await expect(download).rejects.toBe(reason);
      expect(performance.now() - started).toBeLessThan(5000); // the retry wait is 10 s
      expect(warGets().map((r) => r.status)).toEqual([503]);
    } finally {
      await http.close();
    }
  });
});
