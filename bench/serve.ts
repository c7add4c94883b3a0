/**
 * The benchmark's download server in a process of its own, so that neither client shares an event loop
 * or a garbage collector with it: `node --import tsx bench/serve.ts ROOT USER PASSWORD [BYTES_PER_SECOND] [HOST]`
 * (BYTES_PER_SECOND 0: unthrottled; HOST: an address of this machine to listen on, default 127.0.0.1).
 * Prints one JSON line `{"url","caPem"}` on stdout when it listens; stops on SIGTERM or when stdin closes.
 */
import { startDownloadServer } from '../test/support/download-server.js';

const [root, user, password, rate, host] = process.argv.slice(2);
if (!root || !user || !password) throw new Error('usage: serve.ts ROOT USER PASSWORD [BYTES_PER_SECOND]');
const server = await startDownloadServer({ root, tls: true, user, password, ...(rate && Number(rate) > 0 ? { rate: Number(rate) } : {}), ...(host ? { host } : {}) });
process.stdout.write(`${JSON.stringify({ url: server.url, caPem: server.caPem })}\n`);
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
