/**
 * LeTTo's health page for the start-up benchmark, like the default `tomee.health_url`
 * (https://localhost/letto/test.jsf): HTTPS with a self-signed certificate on 127.0.0.1, HTTP 200 at
 * once for every request, in a process of its own. Prints its URL on stdout; stops when stdin closes.
 * Run: node --import tsx bench/health-page.ts
 */
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { getTestCertificate } from '../test/support/download-server.js';

const { key, cert } = await getTestCertificate();
const server = createServer({ key, cert }, (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('LeTTo test page\n');
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`https://127.0.0.1:${(server.address() as AddressInfo).port}/letto/test.jsf\n`);
});
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.resume();
