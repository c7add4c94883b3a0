/**
 * The benchmark's download server in a process of its own, so that neither client shares an event loop
 * or a garbage collector with it: `node --import tsx bench/serve.ts ROOT USER PASSWORD [BYTES_PER_SECOND]`.
 * Prints one JSON line `{"url","caPem"}` on stdout when it listens; stops on SIGTERM or when stdin closes.
 */
import { startDownloadServer } from '../test/support/download-server.js';

const [root, user, password, rate] = process.argv.slice(2);
if (!root || !user || !password) throw new Error('usage: serve.ts ROOT USER PASSWORD [BYTES_PER_SECOND]');
const server = await startDownloadServer({ root, tls: true, user, password, ...(rate ? { rate: Number(rate) } : {}) });
process.stdout.write(`${JSON.stringify({ url: server.url, caPem: server.caPem })}\n`);
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
