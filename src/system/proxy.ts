/**
 * Which proxy from the environment a request goes through, by the rules undici's EnvHttpProxyAgent
 * applies (undici 6, lib/dispatcher/env-http-proxy-agent.js): an https URL through HTTPS_PROXY (else
 * HTTP_PROXY), an http URL through HTTP_PROXY, unless NO_PROXY lists the host (`*`, an exact host, or a
 * suffix written `.example.org` / `*.example.org`, each optionally with `:port`). Used to name the proxy in
 * messages; the requests themselves are routed by undici.
 */

/** The proxy a request goes through: the variable that set it and its URL (credentials removed). */
export interface ProxyInUse {
  /** e.g. `HTTPS_PROXY` (the spelling found in the environment). */
  variable: string;
  url: string;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/** Whether HTTPS_PROXY or HTTP_PROXY (or a lower-case form) is set. */
export function hasProxy(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy);
}

/** The proxy `url` goes through with `env`, or null (no proxy set, or NO_PROXY lists its host). */
export function proxyFor(url: string | URL, env: NodeJS.ProcessEnv): ProxyInUse | null {
  const target = new URL(url);
  const http = pick(env, 'HTTP_PROXY');
  const proxy = target.protocol === 'https:' ? (pick(env, 'HTTPS_PROXY') ?? http) : http;
  if (!proxy || bypassed(target, env.NO_PROXY ?? env.no_proxy ?? '')) return null;
  return { variable: proxy.variable, url: withoutCredentials(proxy.value) };
}

function pick(env: NodeJS.ProcessEnv, name: string): { variable: string; value: string } | null {
  for (const variable of [name, name.toLowerCase()]) {
    const value = env[variable];
    if (value) return { variable, value };
  }
  return null;
}

function bypassed(target: URL, noProxy: string): boolean {
  const entries = noProxy.split(/[,\s]/).filter(Boolean);
  if (entries.length === 0) return false;
  if (noProxy.trim() === '*') return true;
  const host = target.host.replace(/:\d*$/, '').toLowerCase();
  const port = Number.parseInt(target.port, 10) || DEFAULT_PORTS[target.protocol] || 0;
  return entries.some((entry) => {
    const parsed = /^(.+):(\d+)$/.exec(entry);
    const name = (parsed ? parsed[1]! : entry).toLowerCase();
    if (parsed && Number(parsed[2]) !== port) return false;
    return /^[.*]/.test(name) ? host.endsWith(name.replace(/^\*/, '')) : host === name;
  });
}

function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.href.replace(/\/$/, '');
  } catch {
    return '(invalid URL)';
  }
}
