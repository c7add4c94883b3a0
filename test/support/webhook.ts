/**
 * A webhook receiver on loopback for `[notify] webhook_url`: a real HTTP server that answers every POST
 * with 204 and keeps its JSON body, in arrival order. Used by the tests and the demo to show what an
 * admin's chat or ticket system would be told.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One POST as received: the request path, its Content-Type and the parsed JSON body. */
export interface WebhookPost<T> {
  path: string | undefined;
  type: string | undefined;
  body: T;
}

/** A running receiver: `url` to put into the config, `received` filled as notices arrive. */
export interface WebhookReceiver<T> {
  url: string;
  received: Array<WebhookPost<T>>;
  close(): Promise<void>;
}

/**
 * Starts the receiver on 127.0.0.1 (a free port). `path` is only the path of the URL handed out; every
 * path is accepted. A body that is not JSON fails the request's parse and is kept as `undefined`.
 */
export async function startWebhook<T = unknown>(path = '/letto-update'): Promise<WebhookReceiver<T>> {
  const received: Array<WebhookPost<T>> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: T;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
      } catch {
        body = undefined as T;
      }
      received.push({ path: req.url, type: req.headers['content-type'], body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
