/**
 * undici as the transport, loaded only when it is needed: with HTTPS_PROXY/HTTP_PROXY set (all requests
 * to the download server go through EnvHttpProxyAgent) and for health probes of a non-loopback host
 * through a proxy. Without a proxy the download server is reached over node:https (node-transport.ts).
 */
import type { Dispatcher } from 'undici';
import type { Transport, TransportResponse } from '../node-transport.js';
import { importUndici } from '../undici.js';

/** undici's request function, the dispatcher for the download server and a {@link Transport} over it. */
export interface UndiciParts {
  request: typeof import('undici').request;
  /** Dispatcher for the download server (through the proxy when one is configured). */
  agent: Dispatcher;
  send: Transport;
}

/** Loads undici (only when a proxy is configured) and builds its dispatcher. */
export async function loadUndici(env: NodeJS.ProcessEnv, connect: { timeout: number; ca?: string[] }, idle: number): Promise<UndiciParts> {
  const undici = await importUndici();
  const agent = createAgent(undici, env, connect, idle);
  const send: Transport = async (url, headers, signal, method = 'GET') => {
    // the deadline ends the wait for the headers only: a controller of our own, cut loose once they are here
    const controller = new AbortController();
    const forward = () => controller.abort(signal!.reason);
    signal?.addEventListener('abort', forward, { once: true });
    if (signal?.aborted) forward();
    try {
      const response = await undici.request(url, { method, headers, dispatcher: agent, signal: controller.signal });
      return { statusCode: response.statusCode, headers: response.headers as TransportResponse['headers'], body: response.body };
    } catch (error) {
      throw controller.signal.aborted ? controller.signal.reason : error;
    } finally {
      signal?.removeEventListener('abort', forward);
    }
  };
  return { request: undici.request, agent, send };
}

/**
 * The undici dispatcher for the download server: a plain Agent, or EnvHttpProxyAgent when
 * HTTPS_PROXY/HTTP_PROXY (or the lower-case forms) are set; it honours NO_PROXY like curl and wget.
 * Our CA and connect timeout apply to the origin's TLS through the proxy tunnel too.
 */
function createAgent(undici: typeof import('undici'), env: NodeJS.ProcessEnv, connect: { timeout: number; ca?: string[] }, idle: number): Dispatcher {
  const { Agent, EnvHttpProxyAgent, Pool } = undici;
  const httpsProxy = env.HTTPS_PROXY ?? env.https_proxy;
  const httpProxy = env.HTTP_PROXY ?? env.http_proxy;
  const common = { connect, headersTimeout: idle, bodyTimeout: idle };
  if (!httpsProxy && !httpProxy) return new Agent(common);
  const noProxy = env.NO_PROXY ?? env.no_proxy;
  // requestTls (the origin's TLS inside the tunnel) is passed on to undici's ProxyAgent, though not in its types.
  // The tunnel is part of connecting: the TCP connection to the proxy (proxyTls) and the proxy's answer
  // to CONNECT (the proxy client's headersTimeout) get connect_timeout too; undici's defaults (10 s and
  // 300 s) let a proxy that accepts and stays silent hold each attempt for 5 minutes.
  const proxyOptions = {
    ...common,
    requestTls: connect,
    proxyTls: { timeout: connect.timeout },
    clientFactory: (origin: URL, options: object) => new Pool(origin, { ...options, headersTimeout: connect.timeout }),
  } as ConstructorParameters<typeof EnvHttpProxyAgent>[0];
  // undici 6 prints an ExperimentalWarning when this class is first built; a nightly cron job would mail
  // it every night, so it is silenced for exactly this constructor call
  const emitWarning = process.emitWarning;
  process.emitWarning = () => undefined;
  try {
    return new EnvHttpProxyAgent({
      ...proxyOptions,
      ...(httpsProxy ? { httpsProxy } : {}),
      ...(httpProxy ? { httpProxy } : {}),
      ...(noProxy !== undefined ? { noProxy } : {}),
    });
  } finally {
    process.emitWarning = emitWarning;
  }
}
