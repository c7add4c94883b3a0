import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { Context } from '../context.js';
import { DownloadError } from '../errors.js';
import { importUndici } from '../system/undici.js';

/** Docker Hub's registry host, and the key `docker login` stores its credentials under. */
const HUB_HOST = 'registry-1.docker.io';
const HUB_AUTH_KEY = 'https://index.docker.io/v1/';
/** Seconds one registry request may take. */
const TIMEOUT = 30;

/**
 * The tags of the repository `name` (e.g. `lettohub/lettoserver`) in `docker.registry` (Docker Hub when
 * empty), through the registry HTTP API v2 (`GET /v2/<name>/tags/list`, following `Link` pages). Auth as
 * the registry asks (RFC 7235 challenge): Basic, or a Bearer token from its realm, with the credentials
 * `docker login` stored in `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`). The registry's CA
 * is the one the engine trusts: `/etc/docker/certs.d/<host>/ca.crt`, besides the system's.
 * @throws DownloadError when the registry cannot be reached, refuses the credentials, or answers otherwise.
 */
export async function listTags(ctx: Context, name: string): Promise<string[]> {
  const host = ctx.config.docker!.registry || HUB_HOST;
  // through importUndici: in the esbuild bundle a plain dynamic import of undici has no named exports
  const { Agent, request } = await importUndici();
  const ca = await readFile(join('/etc/docker/certs.d', host, 'ca.crt'), 'utf8').catch(() => null);
  const dispatcher = new Agent({ connect: { timeout: TIMEOUT * 1000, ...(ca ? { ca: [...rootCertificates, ca] } : {}) }, headersTimeout: TIMEOUT * 1000, bodyTimeout: TIMEOUT * 1000 });
  const credentials = await dockerCredentials(host === HUB_HOST ? HUB_AUTH_KEY : host);
  let authorization: string | undefined;
  const get = async (url: string) => {
    let response = await request(url, { dispatcher, headers: { accept: 'application/json', ...(authorization ? { authorization } : {}) } });
    if (response.statusCode === 401 && !authorization) {
      await response.body.dump();
      authorization = await answerChallenge(String(response.headers['www-authenticate'] ?? ''), credentials, dispatcher, request);
      response = await request(url, { dispatcher, headers: { accept: 'application/json', authorization } });
    }
    return response;
  };
  try {
    const tags: string[] = [];
    let url: string | null = `https://${host}/v2/${name}/tags/list?n=1000`;
    for (let page = 0; url && page < 50; page++) {
      const response = await get(url);
      if (response.statusCode === 401 || response.statusCode === 403) {
        await response.body.dump();
        throw new DownloadError(`The registry ${host} refused ${credentials ? 'the credentials' : 'access without credentials'} for ${name} (HTTP ${response.statusCode}).`, {
          hint: `Run \`docker login ${ctx.config.docker!.registry}\` as the user that runs letto-update (credential helpers are not read here: the credentials must be in config.json).`,
        });
      }
      if (response.statusCode === 404) {
        await response.body.dump();
        return [];
      }
      if (response.statusCode !== 200) {
        await response.body.dump();
        throw new DownloadError(`The registry ${host} answered HTTP ${response.statusCode} for the tags of ${name}.`, { hint: 'Try again later; check docker.registry.' });
      }
      const body = (await response.body.json()) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const next = /<([^>]+)>;\s*rel="?next"?/.exec(String(response.headers.link ?? ''))?.[1];
      url = next ? new URL(next, url).href : null;
    }
    return tags;
  } catch (error) {
    if (error instanceof DownloadError) throw error;
    throw new DownloadError(`Cannot list the tags of ${name} in the registry ${host}: ${(error as Error).message}.`, {
      hint: 'Check docker.registry and that the registry is reachable over HTTPS with a certificate Docker trusts (/etc/docker/certs.d/<host>/ca.crt).',
      cause: error,
    });
  } finally {
    await dispatcher.close();
  }
}

/** `user:password` for `key` from docker's config.json (`auths.<key>.auth`, base64), or null. */
async function dockerCredentials(key: string): Promise<string | null> {
  const dir = process.env.DOCKER_CONFIG ?? join(homedir(), '.docker');
  try {
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { auths?: Record<string, { auth?: string }> };
    const auth = config.auths?.[key]?.auth;
    return auth ? Buffer.from(auth, 'base64').toString('utf8') : null;
  } catch {
    return null;
  }
}

/** The Authorization header answering a registry's challenge: Basic, or a Bearer token fetched from its realm. */
async function answerChallenge(
  challenge: string,
  credentials: string | null,
  dispatcher: import('undici').Dispatcher,
  request: typeof import('undici').request,
): Promise<string | undefined> {
  const basic = credentials ? `Basic ${Buffer.from(credentials).toString('base64')}` : undefined;
  if (!/^bearer\s/i.test(challenge)) return basic;
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
  if (!params.realm) return basic;
  const url = new URL(params.realm);
  if (params.service) url.searchParams.set('service', params.service);
  if (params.scope) url.searchParams.set('scope', params.scope);
  const response = await request(url, { dispatcher, headers: basic ? { authorization: basic } : {} });
  if (response.statusCode !== 200) {
    await response.body.dump();
    return basic;
  }
  const body = (await response.body.json()) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  return token ? `Bearer ${token}` : basic;
}
