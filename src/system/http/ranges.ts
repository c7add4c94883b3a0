/**
 * Parts of a file by HTTP Range requests (RFC 9110 §14): one range ({@link readRange}, the delta
 * download's tail and single ranges) and several in one request, read from the `multipart/byteranges`
 * answer ({@link readRanges}). Each answer is tied to one version of the file with `If-Range`; after a
 * transient failure only the bytes not yet handed over are asked for again.
 */
import { DownloadError } from '../../errors.js';
import { isByteranges, parseContentRange as parsePartRange, readByteranges, type InclusiveRange } from '../byteranges.js';
import { describeNetworkError, markTransient, networkError, redact } from './errors.js';
import type { Requester } from './request.js';
import type { ByteRange, HttpClient, RangeAnswer, RangeOptions, RangesAnswer, RangesOptions } from './types.js';
import { header, ifRangeValue, parseContentRangeFull, sameFile, validatorsOf } from './validators.js';

/**
 * Reads one answer's body through `read`, which hands every chunk to `deliver` (the caller's write to
 * staging) at its byte position. An abort of `signal` ends it with the signal's reason; an error of
 * `deliver` (ENOSPC…) is thrown as it is, not as a network problem; anything else is the connection
 * breaking off: a transient network error naming `what`, which the retries continue from where it stopped.
 */
async function readAnswer<T>(
  body: { destroy(error?: Error): void },
  what: string,
  signal: AbortSignal | undefined,
  deliver: (chunk: Buffer, position: number) => void | Promise<void>,
  read: (onData: (chunk: Buffer, position: number) => Promise<void>) => Promise<T>,
): Promise<T> {
  const stop = () => body.destroy(signal!.reason as Error);
  signal?.addEventListener('abort', stop, { once: true });
  let local = null as { error: unknown } | null;
  const onData = async (chunk: Buffer, position: number) => {
    try {
      await deliver(chunk, position);
    } catch (error) {
      local = { error };
      throw error;
    }
  };
  try {
    return await read(onData);
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (local) throw local.error;
    throw networkError(`${what} broke off: ${describeNetworkError(error)}.`, error, 'Nothing was installed. Run the command again: it continues where it stopped.');
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}

/** See {@link HttpClient.readRange}. */
export async function readRange(http: Requester, url: string, range: ByteRange, opts: RangeOptions): Promise<RangeAnswer> {
  let expect = opts.expect ?? null;
  let next: number | null = 'start' in range ? range.start : null;
  let end: number | null = 'start' in range ? range.end : null;
  let first: { start: number; total: number } | null = null;
  const what = `Reading bytes ${'start' in range ? `${range.start}-${range.end}` : `-${range.suffix}`} of ${redact(url)}`;
  return http.retry(
    what,
    async (): Promise<RangeAnswer> => {
      opts.signal?.throwIfAborted();
      const ifRange = expect ? ifRangeValue(expect) : null;
      if (expect && !ifRange) return { ok: false, reason: 'the server names no strong ETag and no Last-Modified date, so a range cannot be tied to one version of the file' };
      const spec = next === null ? `bytes=-${(range as { suffix: number }).suffix}` : `bytes=${next}-${end}`;
      // a command run by hand: each attempt must get its answer within the deadline, as for download
      const deadline = http.deadline();
      const response = await http.get(url, { range: spec, ...(ifRange ? { 'if-range': ifRange } : {}) }, [200, 206, 416], deadline);
      if (response.statusCode !== 206) {
        await response.body.dump();
        const now = validatorsOf(response, null);
        if (response.statusCode === 200 && expect && !sameFile(expect, now)) return { ok: false, reason: 'the WAR changed on the server meanwhile (If-Range no longer matched: HTTP 200)' };
        return { ok: false, reason: `the server answered a Range request with HTTP ${response.statusCode}${response.statusCode === 200 ? ' and the whole file' : ''}` };
      }
      const place = parseContentRangeFull(response.headers['content-range']);
      const now = validatorsOf(response, place?.total ?? null);
      if (!place || place.total === null || (next !== null && place.start !== next) || (end !== null && place.end !== end)) {
        await response.body.dump();
        return { ok: false, reason: `the server's 206 answer covers other bytes than asked for (Content-Range: ${header(response.headers['content-range']) ?? 'none'})` };
      }
      if (expect && !sameFile(expect, now)) {
        await response.body.dump();
        return { ok: false, reason: 'the WAR changed on the server meanwhile (other ETag, date or length)' };
      }
      expect ??= now;
      first ??= { start: place.start, total: place.total };
      next = place.start;
      end = place.end;
      await readAnswer(response.body, what, opts.signal, opts.onData, async (onData) => {
        for await (const chunk of response.body) {
          await onData(chunk, next!);
          next = next! + chunk.length;
        }
      });
      if (next !== end + 1) throw markTransient(new DownloadError(`${what} ended early, at byte ${next} of ${end + 1}.`, { hint: 'Run the command again: it continues where it stopped.' }));
      return { ok: true, start: first.start, end, total: first.total, validators: expect };
    },
    opts.signal,
  );
}

/** See {@link HttpClient.readRanges}. */
export async function readRanges(http: Requester, url: string, ranges: readonly InclusiveRange[], opts: RangesOptions): Promise<RangesAnswer> {
  const expect = opts.expect;
  const ifRange = ifRangeValue(expect);
  if (!ifRange || expect.total === null) return { ok: false, fallback: 'full', reason: 'the server names no strong ETag and no Last-Modified date, so a range cannot be tied to one version of the file' };
  const total = expect.total;
  // what is still to come of each range (start moves on as bytes are handed over)
  const left = ranges.map((r) => ({ start: r.start, end: r.end }));
  const what = `Reading ${ranges.length} ranges of ${redact(url)}`;
  const changed = { ok: false, fallback: 'full', reason: 'the WAR changed on the server meanwhile (other ETag, date or length)' } as const;
  const deliver = async (chunk: Buffer, position: number): Promise<void> => {
    const range = left.find((r) => r.start === position && r.start <= r.end);
    if (!range || position + chunk.length > range.end + 1) throw new Error(`internal: bytes at ${position} were not asked for`);
    await opts.onData(chunk, position);
    range.start += chunk.length;
  };
  return http.retry(
    what,
    async (): Promise<RangesAnswer> => {
      opts.signal?.throwIfAborted();
      const asked = left.filter((r) => r.start <= r.end);
      if (asked.length === 0) return { ok: true };
      const deadline = http.deadline();
      const response = await http.get(url, { range: `bytes=${asked.map((r) => `${r.start}-${r.end}`).join(',')}`, 'if-range': ifRange }, [200, 206, 416], deadline);
      const several = asked.length > 1;
      if (response.statusCode !== 206) {
        // a 200 is the whole file: dropped at once, not read (dump closes the connection of a large body)
        await response.body.dump();
        if (response.statusCode === 200 && !sameFile(expect, validatorsOf(response, null))) return { ...changed, reason: 'the WAR changed on the server meanwhile (If-Range no longer matched: HTTP 200)' };
        const answer = response.statusCode === 200 ? 'HTTP 200 and the whole file (not read)' : `HTTP ${response.statusCode}`;
        return { ok: false, fallback: 'single', reason: `the server answered a request for ${asked.length} ranges with ${answer}` };
      }
      if (!sameFile(expect, validatorsOf(response, total))) {
        await response.body.dump();
        return changed;
      }
      const contentType = header(response.headers['content-type']) ?? undefined;
      const single = isByteranges(contentType) ? null : parsePartRange(header(response.headers['content-range']));
      if (!isByteranges(contentType) && (several || !single || single.start !== asked[0]!.start || single.end !== asked[0]!.end || single.total !== total)) {
        await response.body.dump();
        if (single && single.total !== total) return changed;
        return { ok: false, fallback: 'single', reason: `the server answered a request for ${asked.length} range${several ? 's' : ''} with one part (Content-Range: ${header(response.headers['content-range']) ?? 'none'})` };
      }
      const outcome: Awaited<ReturnType<typeof readByteranges>> = await readAnswer(response.body, what, opts.signal, deliver, async (onData) => {
        if (!single) return readByteranges(response.body, { contentType: contentType!, total, accept: (r) => asked.some((a) => a.start === r.start && a.end === r.end), onData });
        let next = single.start;
        for await (const chunk of response.body) {
          await onData(chunk, next);
          next += chunk.length;
        }
        return next === single.end + 1 ? { ok: true } : { ok: false, reason: 'ended early', truncated: true };
      });
      // every asked byte is here (whatever the parser made of the closing boundary)
      if (left.every((r) => r.start > r.end)) return { ok: true };
      if (!outcome.ok && outcome.truncated) {
        throw markTransient(new DownloadError(`${what} ended early (${left.filter((r) => r.start <= r.end).length} ranges not complete).`, { hint: 'Run the command again: it continues where it stopped.' }));
      }
      if (!outcome.ok) {
        response.body.destroy();
        return { ok: false, fallback: outcome.changed ? 'full' : 'single', reason: outcome.reason };
      }
      const missing = left.filter((r) => r.start <= r.end).length;
      return { ok: false, fallback: 'single', reason: `the server's multipart answer lacks ${missing} of the ${asked.length} asked ranges` };
    },
    opts.signal,
  );
}
