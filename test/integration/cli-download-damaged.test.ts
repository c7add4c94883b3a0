/**
 * A WAR whose bytes are damaged early (one byte flipped in the data of its first jar, which ends
 * about 0.6 MiB into the 8 MiB file; a CRC-32 mismatch shows at the end of the entry): the zip check that follows
 * the download finds the bad entry while the download is still running, and the
 * download stops at once instead of fetching the rest. The partial file is discarded (a corrupt prefix
 * cannot be healed by resuming), and the run fails with the same VerifyError as after a full download.
 * The server sends at a limited rate, so "the rest" is seconds of transfer that must not happen.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSizedWar } from '../../fixtures/sized-war.js';
import { makeServerLayout, runCli, writeConfig } from '../support/cli.js';
import { startDownloadServer, type DownloadServer } from '../support/download-server.js';

const REVISION = 6886;
const MiB = 1024 * 1024;
/** Bytes per second the server sends: the 8 MiB WAR takes about 4 s in full. */
const RATE = 2 * MiB;

let root: string;
let server: DownloadServer;
let war: Buffer;
let damagedEntry: string;

/** Flips one byte in the middle of the data of the first entry of at least `size` bytes (local headers, APPNOTE §4.3.7); returns its name. */
function damage(bytes: Buffer, size: number): string {
  for (let offset = 0; bytes.readUInt32LE(offset) === 0x04034b50; ) {
    const compressed = bytes.readUInt32LE(offset + 18);
    const nameLength = bytes.readUInt16LE(offset + 26);
    const data = offset + 30 + nameLength + bytes.readUInt16LE(offset + 28);
    if (compressed >= size) {
      bytes[data + Math.floor(compressed / 2)]! ^= 0xff;
      return bytes.toString('utf8', offset + 30, offset + 30 + nameLength);
    }
    offset = data + compressed;
  }
  throw new Error('no entry to damage');
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-damaged-'));
  await buildSizedWar(join(root, 'letto-stable.war'), 8, REVISION);
  war = await readFile(join(root, 'letto-stable.war'));
  damagedEntry = damage(war, 100_000);
  await writeFile(join(root, 'letto-stable.war'), war);
  await writeFile(join(root, 'stable-revision.txt'), `${REVISION}\r\n`);
  server = await startDownloadServer({ root, tls: true, user: 'letto', password: 'geheim', rate: RATE });
});

afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
});

describe('letto-update download of a WAR damaged early', () => {
  it('stops the download when the zip check finds the bad entry, discards the partial file, exit 1', async () => {
    const layout = await makeServerLayout({ revision: 6880 });
    try {
      const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: 'letto' }, { password: 'geheim', server: { retry_wait: 0.05, delta: false } });
      const started = performance.now();
      const run = await runCli(['--config', config, 'download']);
      const seconds = (performance.now() - started) / 1000;
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toContain(`error: ${join(layout.staging, `letto-${REVISION}.war.part`)} is damaged: entry ${damagedEntry} fails its CRC-32 check.`);
      expect(run.stderr).toMatch(/what to do: Nothing was installed\./);
      expect(run.stderr).not.toMatch(/warning: .*attempt/); // not retried
      const warGets = server.requests.filter((r) => r.path.endsWith('/letto-stable.war'));
      expect(warGets).toHaveLength(1);
      // the server read well under half the file before the connection was dropped (it reads a little
      // ahead of what it sends, and the kernel buffers some), and the run ended long before the full
      // transfer would have
      expect(damagedEntry).toMatch(/^WEB-INF\/lib\/library-0\.jar$/);
      expect(warGets[0]!.bodyBytes).toBeLessThan(war.length / 2);
      expect(seconds).toBeLessThan(war.length / RATE);
      expect(await readdir(layout.staging)).toEqual([]);
    } finally {
      await layout.cleanup();
    }
  });
});
