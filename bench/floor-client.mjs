/**
 * The benchmark's reference clients: the least any Node.js program can do to fetch the WAR, run beside
 * letto-update and curl in the same `npm run bench` to show where the floor is on the machine at hand.
 * Plain JavaScript without dependencies (no tsx, no letto-update module), so that its time and peak RSS
 * are Node's own.
 *
 *   node bench/floor-client.mjs MODE URL CA_FILE CREDENTIALS_FILE OUT_FILE
 *
 * MODE:
 * - `receive`: GET over node:https and throw the body away (Node's TLS and HTTP alone);
 * - `hash-write`: GET, SHA-256 of every chunk, write it to OUT_FILE (what every downloader that records a
 *   SHA-256 must do at least; no zip check, no resume, no retries);
 * - `hash-worker`: like `hash-write`, with the SHA-256 on a worker thread, fed through a shared ring
 *   buffer (the most parallel that hash can be: SHA-256 of one stream cannot be split);
 * - `hash-file`: SHA-256 of the file at URL's place on disk (URL is then a path), no network: the hash's
 *   cost on this CPU.
 *
 * CREDENTIALS_FILE holds `user:password` (not argv, where `ps` would show it). Prints the SHA-256 (hex).
 */
import https from 'node:https';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readFileSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

const [mode, url, caFile, credentialsFile, outFile] = process.argv.slice(2);
if (!mode || !url) throw new Error('usage: floor-client.mjs MODE URL CA_FILE CREDENTIALS_FILE OUT_FILE');

if (mode === 'hash-file') {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(url, { highWaterMark: 1 << 20 })) hash.update(chunk);
  console.log(hash.digest('hex'));
} else {
  const ca = readFileSync(caFile, 'utf8');
  const auth = readFileSync(credentialsFile, 'utf8').trim();
  const sink = mode === 'receive' ? null : mode === 'hash-write' ? serialSink() : workerSink();
  const fd = mode === 'receive' ? null : openSync(outFile, 'w');
  await new Promise((resolve, reject) => {
    https
      .get(url, { ca, auth }, (response) => {
        if (response.statusCode !== 200) reject(new Error(`HTTP ${response.statusCode}`));
        response.on('data', (chunk) => {
          if (fd !== null) writeSync(fd, chunk);
          sink?.update(chunk);
        });
        response.on('end', resolve);
        response.on('error', reject);
      })
      .on('error', reject);
  });
  if (fd !== null) closeSync(fd);
  console.log(sink ? await sink.digest() : 'received');
}

/** SHA-256 on the main thread, chunk by chunk. */
function serialSink() {
  const hash = createHash('sha256');
  return { update: (chunk) => hash.update(chunk), digest: async () => hash.digest('hex') };
}

/**
 * SHA-256 on a worker thread. The main thread copies each chunk into an 8 MiB SharedArrayBuffer ring;
 * `control` holds [bytes written, bytes hashed, done] (mod 2^32), and Atomics.wait/notify pass the turn.
 */
function workerSink() {
  const RING = 8 << 20;
  const ring = new Uint8Array(new SharedArrayBuffer(RING));
  const control = new Int32Array(new SharedArrayBuffer(12));
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     const { createHash } = require('node:crypto');
     const ring = new Uint8Array(workerData.ring), control = new Int32Array(workerData.control), RING = ring.length;
     const hash = createHash('sha256');
     let hashed = 0;
     for (;;) {
       const written = Atomics.load(control, 0);
       if (written === hashed) {
         if (Atomics.load(control, 2)) break;
         Atomics.wait(control, 0, written, 50);
         continue;
       }
       const at = (hashed >>> 0) % RING;
       const n = Math.min((written - hashed) >>> 0, RING - at);
       hash.update(ring.subarray(at, at + n));
       hashed = (hashed + n) | 0;
       Atomics.store(control, 1, hashed);
       Atomics.notify(control, 1);
     }
     parentPort.postMessage(hash.digest('hex'));`,
    { eval: true, workerData: { ring: ring.buffer, control: control.buffer } },
  );
  let written = 0;
  return {
    update(chunk) {
      for (let off = 0; off < chunk.length; ) {
        const hashed = Atomics.load(control, 1);
        const free = RING - ((written - hashed) >>> 0);
        if (free === 0) {
          Atomics.wait(control, 1, hashed, 50);
          continue;
        }
        const at = (written >>> 0) % RING;
        const n = Math.min(free, chunk.length - off, RING - at);
        ring.set(chunk.subarray(off, off + n), at);
        off += n;
        written = (written + n) | 0;
        Atomics.store(control, 0, written);
        Atomics.notify(control, 0);
      }
    },
    digest: () =>
      new Promise((resolve) => {
        worker.once('message', (hex) => {
          void worker.terminate();
          resolve(hex);
        });
        Atomics.store(control, 2, 1);
        Atomics.notify(control, 0);
      }),
  };
}
