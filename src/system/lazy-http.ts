/**
 * The session's {@link HttpClient}, loaded on first use: a health probe that needs no proxy goes
 * straight to src/system/probe.ts (node:http), so `health` and the watchdog never load the download
 * client (TLS, crypto, retries, Digest); every other request loads src/system/http.ts once.
 */
import { isLoopbackHost } from './loopback.js';
import type { ByteRange, DownloadOptions, HttpClient, HttpOptions, InclusiveRange, RangeOptions, RangesOptions } from './http.js';
import { probesDirectly, probeUrl } from './probe.js';

/** Same options and behaviour as `createHttpClient` in src/system/http.ts. */
export function createLazyHttpClient(options: HttpOptions): HttpClient {
  let client: Promise<HttpClient> | null = null;
  const full = () => (client ??= import('./http.js').then((http) => http.createHttpClient(options)));
  const env = options.env ?? process.env;
  return {
    getText: async (url: string) => (await full()).getText(url),
    getOptionalText: async (url: string) => (await full()).getOptionalText(url),
    download: async (url: string, dest: string, opts?: DownloadOptions) => (await full()).download(url, dest, opts),
    readRange: async (url: string, range: ByteRange, opts: RangeOptions) => (await full()).readRange(url, range, opts),
    readRanges: async (url: string, ranges: readonly InclusiveRange[], opts: RangesOptions) => (await full()).readRanges(url, ranges, opts),
    size: async (...args: Parameters<HttpClient['size']>) => (await full()).size(...args),
    async probe(url, timeoutSeconds) {
      if (!probesDirectly(url, env, isLoopbackHost)) return (await full()).probe(url, timeoutSeconds);
      const loopback = isLoopbackHost(new URL(url).hostname);
      if (loopback || !options.extraCaPem) return probeUrl(url, timeoutSeconds, { verify: !loopback });
      const { rootCertificates } = await import('node:tls');
      return probeUrl(url, timeoutSeconds, { verify: true, ca: [...rootCertificates, options.extraCaPem] });
    },
    async close() {
      if (client) await (await client).close();
    },
  };
}
