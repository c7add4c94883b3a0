/**
 * Plain http:// to a host that is not loopback: refused unless `server.allow_plain_http` is on, and then
 * with one warning. The "other host" is a real server bound to a non-loopback address of this machine
 * (its LAN address), since a loopback address is the one case that is always allowed. A redirect from
 * https to http is a downgrade and is refused without the option, even to loopback.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildSizedWar } from '../../fixtures/sized-war.js';
import { DownloadError } from '../../src/errors.js';
import { createHttpClient, type HttpClient, type HttpOptions } from '../../src/system/http.js';
import { makeServerLayout, runCli, writeConfig } from '../support/cli.js';
import { nonLoopbackAddress, startDownloadServer, type DownloadServer } from '../support/download-server.js';

const USER = 'letto';
const PASSWORD = 'geheim';
const REVISION = 6886;
const address = nonLoopbackAddress();
if (!address) console.log('http-plain: skipped, this machine has no non-loopback IPv4 address to serve "another host" from');

describe.skipIf(!address)(`plain http to another host (${address ?? 'none'})`, () => {
  let root: string;
  let war: Buffer;
  /** Plain http with Basic auth on the non-loopback address. */
  let lan: DownloadServer;
  /** Plain http without auth on the non-loopback address (a redirect target). */
  let lanOpen: DownloadServer;
  /** Plain http without auth on loopback (a downgrade target). */
  let loopOpen: DownloadServer;
  /** TLS with Basic auth on loopback, redirecting to the others. */
  let origin: DownloadServer;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'letto-plain-'));
    await buildSizedWar(join(root, 'letto-stable.war'), 2, REVISION);
    await writeFile(join(root, 'stable-revision.txt'), `${REVISION}\r\n`);
    war = await readFile(join(root, 'letto-stable.war'));
    lan = await startDownloadServer({ root, host: address!, user: USER, password: PASSWORD });
    lanOpen = await startDownloadServer({ root, host: address! });
    loopOpen = await startDownloadServer({ root });
    origin = await startDownloadServer({
      root,
      tls: true,
      user: USER,
      password: PASSWORD,
      onRequest(req, res) {
        const name = req.url?.split('/').at(-1) ?? '';
        if (req.url?.includes('/to-lan/')) res.writeHead(302, { location: `${lanOpen.url}${name}` }).end();
        else if (req.url?.includes('/to-loopback/')) res.writeHead(302, { location: `${loopOpen.url}${name}` }).end();
        else return false;
        return true;
      },
    });
  });

  afterAll(async () => {
    await Promise.all([lan?.close(), lanOpen?.close(), loopOpen?.close(), origin?.close()]);
    await rm(root, { recursive: true, force: true });
  });

  beforeEach(() => {
    for (const s of [lan, lanOpen, loopOpen, origin]) s.requests.length = 0;
  });

  async function withClient<T>(options: Partial<HttpOptions>, use: (http: HttpClient, warnings: string[]) => Promise<T>): Promise<T> {
    const warnings: string[] = [];
    const http = createHttpClient({
      serverUrl: origin.url,
      credentials: { user: USER, password: PASSWORD },
      extraCaPem: origin.caPem,
      retry: { retries: 0 },
      onWarning: (message) => warnings.push(message),
      ...options,
    });
    try {
      return await use(http, warnings);
    } finally {
      await http.close();
    }
  }

  it('is refused before anything is sent, naming server.allow_plain_http', async () => {
    const error = await withClient({ serverUrl: lan.url }, (http) => http.getText(`${lan.url}stable-revision.txt`)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as DownloadError).message).toMatch(new RegExp(`Refusing plain http://${address!.replace(/\./g, '\\.')}:\\d+/.*unencrypted`));
    expect((error as DownloadError).hint).toMatch(/server\.allow_plain_http = true/);
    expect(lan.requests).toHaveLength(0);
  });

  it('with allow_plain_http the download works, and the warning comes once per client', async () => {
    const work = await mkdtemp(join(tmpdir(), 'letto-plain-dl-'));
    try {
      await withClient({ serverUrl: lan.url, allowPlainHttp: true }, async (http, warnings) => {
        expect((await http.getText(`${lan.url}stable-revision.txt`)).trim()).toBe(String(REVISION));
        const result = await http.download(`${lan.url}letto-stable.war`, join(work, 'out.war'));
        expect(result.sha256).toBe(createHash('sha256').update(war).digest('hex'));
        expect((await readFile(join(work, 'out.war'))).equals(war)).toBe(true);
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(new RegExp(`${address!.replace(/\./g, '\\.')}:\\d+ is reached over plain http: the download password and the WAR travel unencrypted`));
      });
      // the configured origin gets the credentials, even over http (that is what the option allows)
      expect(lan.requests.every((r) => r.authorized)).toBe(true);
      expect(lan.requests.filter((r) => r.path.endsWith('.war'))[0]!.bodyBytes).toBe(war.length);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('a redirect from https to plain http is refused without the option, to another host and to loopback', async () => {
    for (const via of ['to-lan', 'to-loopback']) {
      const error = await withClient({}, (http) => http.getText(`${origin.url}${via}/stable-revision.txt`)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DownloadError);
      expect((error as DownloadError).message).toMatch(/Refusing the redirect from https:.* to plain http:.*downgrade/);
      expect((error as DownloadError).hint).toMatch(/server\.allow_plain_http/);
    }
    expect(lanOpen.requests).toHaveLength(0);
    expect(loopOpen.requests).toHaveLength(0);
  });

  it('with the option the redirect is followed, with a warning and without the credentials', async () => {
    await withClient({ allowPlainHttp: true }, async (http, warnings) => {
      expect((await http.getText(`${origin.url}to-lan/stable-revision.txt`)).trim()).toBe(String(REVISION));
      expect(warnings).toHaveLength(1);
    });
    expect(origin.requests[0]!.headers.authorization).toMatch(/^Basic /);
    expect(lanOpen.requests).toHaveLength(1);
    expect(lanOpen.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('letto-update download: refused by the config without the option (exit 2), works with it and warns once', async () => {
    const layout = await makeServerLayout({ revision: 6880 });
    try {
      const refused = await writeConfig(layout, { url: lan.url, caPem: '', user: USER }, { password: PASSWORD });
      const no = await runCli(['--config', refused, 'download']);
      expect(no.exitCode).toBe(2);
      expect(no.stderr).toMatch(/server\.url .* is not https: plain http:\/\/ to another machine/);
      expect(no.stderr).toMatch(/server\.allow_plain_http = true/);
      expect(lan.requests).toHaveLength(0);
      expect(await readdir(layout.staging).catch(() => [])).toEqual([]);

      const allowed = await writeConfig(layout, { url: lan.url, caPem: '', user: USER }, { password: PASSWORD, server: { allow_plain_http: true } });
      const yes = await runCli(['--config', allowed, 'download']);
      expect(yes.exitCode).toBe(0);
      const warnings = yes.stderr.split('\n').filter((line) => line.startsWith('warning:'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/plain http: the download password and the WAR travel unencrypted/);
      expect(yes.stderr).not.toContain(PASSWORD);
      expect((await readFile(join(layout.staging, `letto-${REVISION}.war`))).equals(war)).toBe(true);
    } finally {
      await layout.cleanup();
    }
  });

  it('update --cron with the option and nothing to do stays silent: the standing warning alone prints nothing', async () => {
    const layout = await makeServerLayout({ revision: REVISION });
    try {
      const allowed = await writeConfig(layout, { url: lan.url, caPem: '', user: USER }, { password: PASSWORD, server: { allow_plain_http: true } });
      const run = await runCli(['--config', allowed, 'update', '--cron']);
      expect(run.exitCode).toBe(0);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe('');
      // it did ask the server over plain http
      expect(lan.requests.map((r) => r.path)).toContain('/download/letto/stable-revision.txt');
    } finally {
      await layout.cleanup();
    }
  });
});
