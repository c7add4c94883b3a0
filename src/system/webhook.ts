import { importUndici } from './undici.js';

/**
 * POSTs `payload` as JSON (`content-type: application/json`) to `url` with undici. Any 2xx answer is
 * success. The URL may carry a secret token in its path or query (Slack, Teams, Mattermost hooks), so
 * messages name only its origin.
 *
 * @param timeoutSeconds for the whole request.
 * @throws Error naming the origin and the HTTP status or network error.
 */
export async function postJson(url: string, payload: unknown, timeoutSeconds = 30): Promise<void> {
  const origin = new URL(url).origin;
  let status: number;
  try {
    // loaded here, not at the top: `download` and `update` import this module, and undici alone adds
    // ~15 MiB RSS to a process that otherwise does not need it (docs/performance.md)
    const { request } = await importUndici();
    const response = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'letto-update' },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(timeoutSeconds * 1000),
    });
    status = response.statusCode;
    await response.body.dump();
  } catch (error) {
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    throw new Error(`webhook ${origin}: ${cause ?? (error as Error).message}`);
  }
  if (status < 200 || status >= 300) throw new Error(`webhook ${origin} answered HTTP ${status}`);
}
