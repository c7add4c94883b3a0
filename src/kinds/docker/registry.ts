import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { Dispatcher } from 'undici';
import type { Context } from '../../context.js';
import { DownloadError } from '../../errors.js';
import { importUndici } from '../../system/undici.js';

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
  return withRegistry(ctx, name, `the tags of ${name}`, async (get) => {
    const tags: string[] = [];
    let url: string | null = `/v2/${name}/tags/list?n=1000`;
    for (let page = 0; url && page < 50; page++) {
      const response = await get(url, 'GET');
      if (response.statusCode === 404) {
        await response.body.dump();
        return [];
      }
      const body = (await response.body.json()) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const next = /<([^>]+)>;\s*rel="?next"?/.exec(String(response.headers.link ?? ''))?.[1];
      url = next ?? null;
    }
    return tags;
  });
}

/** The media types of an image manifest or index (Docker's and OCI's), for a manifest HEAD. */
const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

/**
 * Whether the registry has `name:tag`, without pulling it: `HEAD /v2/<name>/manifests/<tag>` (which
 * Docker Hub does not count as a pull), with the same auth and CA as {@link listTags}.
 * @returns true (HTTP 200) or false (404). @throws DownloadError as listTags does.
 */
export async function hasTag(ctx: Context, name: string, tag: string): Promise<boolean> {
  return withRegistry(ctx, name, `${name}:${tag}`, async (get) => {
    const response = await get(`/v2/${name}/manifests/${encodeURIComponent(tag)}`, 'HEAD', { accept: MANIFEST_TYPES });
    await response.body.dump();
    return response.statusCode !== 404;
  });
}

type RegistryGet = (path: string, method: 'GET' | 'HEAD', headers?: Record<string, string>) => Promise<Dispatcher.ResponseData>;

/**
 * Runs `use` with a `get` for the registry of `docker.registry` (paths relative to it, auth answered
 * on the first 401, a refused or unexpected answer thrown as DownloadError naming `what`, e.g. `the tags of
 * lettohub/lettoserver`).
 */
async function withRegistry<T>(ctx: Context, name: string, what: string, use: (get: RegistryGet) => Promise<T>): Promise<T> {
  const host = ctx.config.docker!.registry || HUB_HOST;
  // through importUndici: in the esbuild bundle a plain dynamic import of undici has no named exports
  const { Agent, request } = await importUndici();
  const ca = await readFile(join('/etc/docker/certs.d', host, 'ca.crt'), 'utf8').catch(() => null);
  const dispatcher = new Agent({ connect: { timeout: TIMEOUT * 1000, ...(ca ? { ca: [...rootCertificates, ca] } : {}) }, headersTimeout: TIMEOUT * 1000, bodyTimeout: TIMEOUT * 1000 });
  const credentials = await dockerCredentials(host === HUB_HOST ? HUB_AUTH_KEY : host);
  let authorization: string | undefined;
  const get: RegistryGet = async (path, method, headers = {}) => {
    const url = new URL(path, `https://${host}`).href;
    const send = () => request(url, { method, dispatcher, headers: { accept: 'application/json', ...headers, ...(authorization ? { authorization } : {}) } });
    let response = await send();
    if (response.statusCode === 401 && !authorization) {
      await response.body.dump();
      authorization = await answerChallenge(String(response.headers['www-authenticate'] ?? ''), credentials, dispatcher, request);
      response = await send();
    }
    if (response.statusCode === 401 || response.statusCode === 403) {
      await response.body.dump();
      throw new DownloadError(`The registry ${host} refused ${credentials ? 'the credentials' : 'access without credentials'} for ${name} (HTTP ${response.statusCode}).`, {
        hint: `Run \`docker login ${ctx.config.docker!.registry}\` as the user that runs letto-update (credential helpers are not read here: the credentials must be in config.json).`,
      });
    }
    if (response.statusCode !== 200 && response.statusCode !== 404) {
      await response.body.dump();
      throw new DownloadError(`The registry ${host} answered HTTP ${response.statusCode} for ${what}.`, { hint: 'Try again later; check docker.registry.' });
    }
    return response;
  };
  try {
    return await use(get);
  } catch (error) {
    if (error instanceof DownloadError) throw error;
    throw new DownloadError(`Cannot ask the registry ${host} for ${what}: ${(error as Error).message}.`, {
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
