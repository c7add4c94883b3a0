/**
 * LeTTo's health page for the start-up benchmark: plain HTTP on 127.0.0.1, HTTP 200 at once for every
 * request, in a process of its own. Prints its URL on stdout; stops when stdin closes.
 */
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('LeTTo test page\n');
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${server.address().port}/letto/test.jsf\n`);
});
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.resume();
