/**
 * A whole file to disk (the WAR): streamed, hashed (SHA-256) and counted on the way, continued with
 * `Range` + `If-Range` after a transient failure or from a partial file of an earlier run, started over
 * at byte 0 when the server's answer does not continue exactly that file (RFC 9110 §13.1.5, §14.4).
 */
import { createHash } from 'node:crypto';
import { open, truncate, type FileHandle } from 'node:fs/promises';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DownloadError } from '../../errors.js';
import { fileSize, hashFile, hashFileInto } from '../files.js';
import type { TransportResponse } from '../node-transport.js';
import { describeNetworkError, markTransient, networkError, redact } from './errors.js';
import type { Requester } from './request.js';
import type { DownloadOptions, DownloadResult, HttpClient, Validators } from './types.js';
import { contentRangeTotal, ifRangeValue, parseContentRange, sameFile, validatorsOf } from './validators.js';

/** Write errors of the local disk: never a network problem, they keep their own code (see asLettoError). */
const LOCAL_WRITE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EISDIR', 'ENOENT']);

/** One download across its attempts: what the attempts learnt and counted. */
interface DownloadRun {
  url: string;
  dest: string;
  opts: DownloadOptions;
  validators: Validators | null;
  /** Body bytes received over the network, all attempts. */
  transferred: number;
  attempts: number;
  /** Bytes on disk when the first attempt began (0: a fresh download). */
  resumedFrom: number | null;
}

/** Where an attempt's bytes go in the file (`from`, bytes) and the file's length when known. */
type Start = { from: number; total: number | null };

/** See {@link HttpClient.download}. */
export async function download(http: Requester, url: string, dest: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const run: DownloadRun = { url, dest, opts, validators: opts.resume ?? null, transferred: 0, attempts: 0, resumedFrom: null };
  return http.retry(`Download of ${redact(url)}`, () => attempt(http, run), opts.signal);
}

/** One attempt: ask for what is missing, receive it. @throws DownloadError (transient when the bytes stopped short). */
async function attempt(http: Requester, run: DownloadRun): Promise<DownloadResult> {
  run.opts.signal?.throwIfAborted();
  run.attempts++;
  const begun = await begin(http, run);
  if ('complete' in begun) return begun.complete;
  run.resumedFrom ??= begun.start.from;
  const { received, sha256 } = await receive(run, begun.response, begun.start);
  const { total } = begun.start;
  if (total !== null && received < total) {
    throw markTransient(new DownloadError(`Download of ${redact(run.url)} is incomplete: ${received} of ${total} bytes.`, { hint: 'Nothing was installed. Run the command again: it continues where it stopped.' }));
  }
  if (total !== null && received > total) {
    throw new DownloadError(`Download of ${redact(run.url)} is longer than announced: ${received} of ${total} bytes.`, { hint: 'Nothing was installed. Run the command again.' });
  }
  return { bytes: received, sha256, resumedFrom: run.resumedFrom, transferred: run.transferred, attempts: run.attempts, validators: run.validators! };
}

/**
 * Asks for the bytes not yet on disk: the rest with `Range` + `If-Range` when the partial file can be
 * tied to the server's file, else the whole file. A 416 for exactly the bytes on disk means the file is
 * complete; a 206 that does not continue it exactly is dropped and the file asked for again from byte 0.
 */
async function begin(http: Requester, run: DownloadRun): Promise<{ complete: DownloadResult } | { response: TransportResponse; start: Start }> {
  const { url, dest, validators } = run;
  let have = await fileSize(dest);
  const ifRange = validators ? ifRangeValue(validators) : null;
  if (have > 0 && !ifRange) have = 0; // nothing proves the partial is the same file: start again
  if (validators?.total !== null && validators?.total !== undefined && have > validators.total) have = 0;
  // a command run by hand: each attempt must get its answer within the deadline (the transfer is not cut off)
  const deadline = http.deadline();
  const response = await http.get(url, have > 0 ? { range: `bytes=${have}-`, 'if-range': ifRange! } : {}, have > 0 ? [200, 206, 416] : [200], deadline);
  if (response.statusCode === 416) {
    // If-Range matched (same file) and nothing is left to send: the partial file is complete
    await response.body.dump();
    if (contentRangeTotal(response.headers['content-range']) === have) {
      run.resumedFrom ??= have;
      run.opts.onWritten?.(have);
      const complete = { bytes: have, sha256: await hashFile(dest), resumedFrom: run.resumedFrom, transferred: run.transferred, attempts: run.attempts, validators: validators! };
      return { complete };
    }
  } else if (response.statusCode === 206) {
    const range = parseContentRange(response.headers['content-range']);
    if (range && range.start === have && sameFile(validators!, validatorsOf(response, range.total))) return { response, start: { from: have, total: range.total } };
    // a 206 that does not continue our file exactly (or the file changed): never stitch, start again
    await response.body.dump();
  } else {
    return { response, start: await fresh(run, response) };
  }
  const whole = await http.get(url, {}, [200], deadline);
  return { response: whole, start: await fresh(run, whole) };
}

/** Starts `dest` afresh: validators from this 200 response, an empty file. */
async function fresh(run: DownloadRun, response: TransportResponse): Promise<Start> {
  const validators = validatorsOf(response, null);
  run.validators = validators;
  await run.opts.onValidators?.(validators);
  run.opts.onRestart?.();
  await truncate(run.dest, 0).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
  return { from: 0, total: validators.total };
}

/**
 * Streams the answer's body into `dest` from `start.from` on: each chunk hashed, counted and reported
 * as it arrives ('data'), and piped to the (batching) file writer, which pauses the response while the
 * disk is behind; unlike an async iterator, this never concatenates buffered chunks into new buffers
 * (garbage that showed as peak RSS). @returns the bytes on disk and the SHA-256 (hex) of all of them.
 * @throws the signal's reason on abort; local write errors as they are; else a network DownloadError.
 */
async function receive(run: DownloadRun, response: TransportResponse, start: Start): Promise<{ received: number; sha256: string }> {
  const { opts } = run;
  const hash = createHash('sha256');
  if (start.from > 0) opts.onWritten?.(start.from);
  if (start.from > 0) await hashFileInto(hash, run.dest, start.from);
  const started = Date.now();
  let received = start.from;
  let lastReport = 0;
  const sink = new FileSink(run.dest, start.from > 0 ? 'a' : 'w', start.from, opts.onWritten);
  const body = response.body as TransportResponse['body'] & Readable;
  const stop = () => body.destroy(opts.signal!.reason as Error);
  opts.signal?.addEventListener('abort', stop, { once: true });
  if (opts.signal?.aborted) stop();
  try {
    body.on('data', (chunk: Buffer) => {
      received += chunk.length;
      run.transferred += chunk.length;
      hash.update(chunk);
      const now = Date.now();
      if (opts.onProgress && now - lastReport >= 250) {
        lastReport = now;
        const rate = (received - start.from) / Math.max((now - started) / 1000, 0.001);
        opts.onProgress({ received, total: start.total, bytesPerSecond: rate, etaSeconds: start.total && rate > 0 ? (start.total - received) / rate : null });
      }
    });
    await pipeline(body, sink);
  } catch (error) {
    // pipeline has destroyed the response and the file writer
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (LOCAL_WRITE_ERRORS.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
    throw networkError(`Download of ${redact(run.url)} broke off after ${received} bytes: ${describeNetworkError(error)}.`, error, 'Nothing was installed. Run the command again: it continues where it stopped.');
  } finally {
    opts.signal?.removeEventListener('abort', stop);
  }
  return { received, sha256: hash.digest('hex') };
}

/**
 * A file writer that batches chunks (writev) and reports the bytes on disk after each write, so that
 * a verifier can follow the file while it grows. Buffers at most 1 MiB.
 */
class FileSink extends Writable {
  private handle: FileHandle | null = null;
  constructor(
    private readonly path: string,
    private readonly flags: 'a' | 'w',
    private position: number,
    private readonly onWritten?: (bytesOnDisk: number) => void,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.path, this.flags, 0o640).then((handle) => {
      this.handle = handle;
      callback();
    }, callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeAll(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll([chunk]).then(() => callback(), callback);
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    const total = buffers.reduce((sum, b) => sum + b.length, 0);
    let { bytesWritten } = await this.handle!.writev(buffers);
    if (bytesWritten < total) {
      // a short write (rare): write the rest
      const rest = Buffer.concat(buffers).subarray(bytesWritten);
      for (let at = 0; at < rest.length; ) {
        const { bytesWritten: n } = await this.handle!.write(rest, at, rest.length - at);
        at += n;
      }
      bytesWritten = total;
    }
    this.position += bytesWritten;
    this.onWritten?.(this.position);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.closeHandle().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.closeHandle().then(
      () => callback(error),
      () => callback(error),
    );
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
  }
}
