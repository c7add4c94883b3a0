/**
 * Reads a `multipart/byteranges` answer (RFC 9110 §14.6): the answer to a Range request for several
 * ranges, one part per range, each with its own `Content-Range`. The MIME framing (boundary search, part
 * headers) is multipasta's (a streaming multipart parser without dependencies); what the parts mean,
 * and whether they are the asked bytes of the same file, is checked here. Every byte is handed to
 * `onData` with its position in the file, in order, before the next network chunk is read.
 */
import { make as makeMultipartParser, type MultipartError } from 'multipasta';

/** A byte range, `start` to `end` inclusive. Units: bytes. */
export interface InclusiveRange {
  start: number;
  end: number;
}

/** What reading the body gave: every part read to its end, or why the answer cannot be used. */
export type BodyOutcome = { ok: true } | { ok: false; reason: string; /** The body ended before its closing boundary (asking again for the rest may help). */ truncated?: true; /** A part names another length of the file. */ changed?: true };

/** Options of {@link readByteranges}. */
export interface ByterangesOptions {
  /** The `Content-Type` header of the answer (it carries the boundary). */
  contentType: string;
  /** The file's length in bytes: every part's `Content-Range` must name it. */
  total: number;
  /**
   * Whether a part for `[start, end]` is welcome (one of the asked ranges, or what is left of one);
   * called once per part header, before any of its bytes.
   */
  accept: (range: InclusiveRange) => boolean;
  /** Told each chunk with its position in the file; awaited. */
  onData: (chunk: Buffer, position: number) => Promise<void> | void;
}

/** `multipart/byteranges; boundary=…` (the boundary is read by the parser). */
export function isByteranges(contentType: string | undefined): contentType is string {
  return contentType !== undefined && /^\s*multipart\/byteranges\s*;/i.test(contentType);
}

type Event = { kind: 'part'; contentRange: string | null } | { kind: 'data'; chunk: Buffer } | { kind: 'end' } | { kind: 'error'; error: MultipartError } | { kind: 'done' };

/**
 * Reads `body` (a multipart/byteranges answer) part by part.
 * @returns `{ ok: false, reason }` for an answer that is not what was asked: a part without a usable
 *   `Content-Range`, of another length of file, not asked for, longer or shorter than it says, or broken
 *   MIME framing. A body that ends before its closing boundary is `{ ok: false }` too (the caller
 *   decides whether to ask again for what is missing). After the closing boundary the body is still
 *   read to its end (an epilogue is ignored), so that the connection can be kept alive.
 * @throws whatever reading `body` throws (network errors) and whatever `onData` throws.
 */
export async function readByteranges(body: AsyncIterable<Buffer>, options: ByterangesOptions): Promise<BodyOutcome> {
  let events: Event[] = [];
  const parser = makeMultipartParser({
    headers: { 'content-type': options.contentType },
    // every part is binary data, streamed: none is buffered as a form field
    isFile: () => true,
    onFile: (info) => {
      const value = info.headers['content-range'];
      events.push({ kind: 'part', contentRange: typeof value === 'string' ? value : null });
      return (chunk) => events.push(chunk === null ? { kind: 'end' } : { kind: 'data', chunk: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length) });
    },
    onField: () => undefined,
    onError: (error) => events.push({ kind: 'error', error }),
    onDone: () => events.push({ kind: 'done' }),
  });
  let part: { range: InclusiveRange; next: number } | null = null;
  let done = false;
  /** Works off what the parser has found so far; a reason when the answer is unusable. */
  const drain = async (): Promise<string | { reason: string; changed: true } | null> => {
    const now = events;
    events = [];
    for (const event of now) {
      if (done) return null; // an epilogue after the closing boundary is ignored
      if (event.kind === 'error') return `the multipart answer cannot be read (${event.error._tag})`;
      if (event.kind === 'done') {
        done = true;
      } else if (event.kind === 'part') {
        const range = parseContentRange(event.contentRange);
        if (!range) return `a part of the multipart answer has no usable Content-Range (${event.contentRange ?? 'none'})`;
        if (range.total !== options.total) return { reason: `the WAR's length changed on the server (${options.total} → ${range.total} bytes)`, changed: true };
        if (!options.accept(range)) return `the multipart answer holds bytes ${range.start}-${range.end}, which were not asked for`;
        part = { range, next: range.start };
      } else if (event.kind === 'data') {
        if (!part) return 'the multipart answer holds data outside a part';
        if (part.next + event.chunk.length > part.range.end + 1) return `a part of the multipart answer is longer than its Content-Range (bytes ${part.range.start}-${part.range.end})`;
        await options.onData(event.chunk, part.next);
        part.next += event.chunk.length;
      } else {
        if (part && part.next !== part.range.end + 1) return `a part of the multipart answer ends at byte ${part.next}, before the end of its Content-Range (${part.range.end})`;
        part = null;
      }
    }
    return null;
  };
  for await (const chunk of body) {
    parser.write(chunk);
    const reason = await drain();
    if (typeof reason === 'string') return { ok: false, reason };
    if (reason) return { ok: false, ...reason };
  }
  if (!done) return { ok: false, reason: 'the multipart answer ended before its closing boundary', truncated: true };
  return { ok: true };
}

/** `bytes 100-199/1000` → {start: 100, end: 199, total: 1000} (RFC 9110 §14.4); null if unusable (`*` as length included). */
export function parseContentRange(value: string | null | undefined): (InclusiveRange & { total: number }) | null {
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value?.trim() ?? '');
  if (!match) return null;
  const range = { start: Number(match[1]), end: Number(match[2]), total: Number(match[3]) };
  return range.start <= range.end && range.end < range.total ? range : null;
}
