/**
 * The multipart/byteranges reader (src/system/byteranges.ts) on answers built here byte by byte, cut
 * into network chunks at every possible place, and the batching of ranges (src/war/delta/fetch-ranges.ts).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { batches, MAX_BATCH_BYTES, MAX_RANGES } from '../../src/war/delta/fetch-ranges.js';
import { readByteranges, type InclusiveRange } from '../../src/system/byteranges.js';

const file = randomBytes(4096);
const BOUNDARY = '3d6b6a416f9b5';
const contentType = `multipart/byteranges; boundary=${BOUNDARY}`;
// data that holds what looks like a boundary: without its CRLF, and the start of one
file.write(`--${BOUNDARY}\r\n`, 2100);
file.write(`\r\n--${BOUNDARY.slice(0, 6)}`, 2500);

/** An answer as Apache writes it: CRLF, boundary, part headers, data … closing boundary. */
function answer(parts: Array<{ range: InclusiveRange; shown?: string; data?: Buffer }>, close = true): Buffer {
  const pieces: Buffer[] = [];
  for (const p of parts) {
    pieces.push(Buffer.from(`\r\n--${BOUNDARY}\r\nContent-Type: application/java-archive\r\nContent-Range: ${p.shown ?? `bytes ${p.range.start}-${p.range.end}/${file.length}`}\r\n\r\n`));
    pieces.push(p.data ?? file.subarray(p.range.start, p.range.end + 1));
  }
  if (close) pieces.push(Buffer.from(`\r\n--${BOUNDARY}--\r\n`));
  return Buffer.concat(pieces);
}

async function* chunks(body: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < body.length; at += size) yield body.subarray(at, at + size);
}

async function read(body: Buffer, size: number, asked: InclusiveRange[]) {
  const out = Buffer.alloc(file.length);
  const seen: Array<[number, number]> = [];
  const outcome = await readByteranges(chunks(body, size), {
    contentType,
    total: file.length,
    accept: (r) => asked.some((a) => a.start === r.start && a.end === r.end),
    onData: (chunk, position) => {
      chunk.copy(out, position);
      seen.push([position, chunk.length]);
    },
  });
  return { outcome, out, seen };
}

describe('readByteranges', () => {
  const asked = [
    { start: 0, end: 99 },
    { start: 1000, end: 1000 },
    { start: 2000, end: 2999 },
  ];
  it('hands every part to onData at its place in the file, wherever the network cuts the answer', async () => {
    const body = answer(asked.map((range) => ({ range })));
    let missedEnd = 0;
    for (let size = 1; size <= body.length; size++) {
      const { outcome, out, seen } = await read(body, size, asked);
      for (const r of asked) expect(out.subarray(r.start, r.end + 1).equals(file.subarray(r.start, r.end + 1)), `chunks of ${size}`).toBe(true);
      expect(seen.reduce((sum, [, n]) => sum + n, 0)).toBe(100 + 1 + 1000);
      // multipasta misses the closing boundary when a chunk ends right after the boundary string (it looks
      // for the two dashes in what follows within the same chunk): the data is all there, and
      // HttpClient.readRanges counts the bytes of every asked range before it looks at the end
      if (!outcome.ok) {
        expect(outcome).toMatchObject({ truncated: true });
        missedEnd++;
      }
    }
    expect(missedEnd).toBeLessThan(body.length / 50);
  });

  it('refuses a part that was not asked for, names another file length, lies about its length or has no Content-Range', async () => {
    const cases: Array<[Buffer, RegExp]> = [
      [answer([{ range: { start: 5, end: 9 } }]), /bytes 5-9, which were not asked for/],
      [answer([{ range: asked[0]!, shown: `bytes 0-99/${file.length + 1}` }]), /length changed on the server/],
      [answer([{ range: asked[0]!, data: file.subarray(0, 101) }]), /longer than its Content-Range/],
      [answer([{ range: asked[0]!, data: file.subarray(0, 99) }]), /ends at byte 99, before the end of its Content-Range/],
      [answer([{ range: asked[0]!, shown: 'bytes 0-99/*' }]), /no usable Content-Range/],
    ];
    for (const [body, reason] of cases) {
      const { outcome } = await read(body, 17, asked);
      expect(outcome.ok).toBe(false);
      expect(!outcome.ok && outcome.reason).toMatch(reason);
    }
  });

  it('an answer that ends before its closing boundary is truncated (the caller asks again for the rest)', async () => {
    const { outcome, seen } = await read(answer(asked.slice(0, 2).map((range) => ({ range })), false), 64, asked);
    expect(outcome).toMatchObject({ ok: false, truncated: true });
    expect(seen[0]).toEqual([0, expect.any(Number)]);
  });
});

describe('batches', () => {
  it('at most MAX_RANGES ranges and MAX_BATCH_BYTES bytes a request; touching ranges never in one request', () => {
    const ranges = Array.from({ length: 250 }, (_, i) => ({ start: i * 100_000, end: i * 100_000 + 1000 }));
    expect(batches(ranges).map((b) => b.length)).toEqual([MAX_RANGES, MAX_RANGES, 50]);
    const big = [{ start: 0, end: MAX_BATCH_BYTES }, { start: MAX_BATCH_BYTES, end: MAX_BATCH_BYTES + 10 }, { start: MAX_BATCH_BYTES + 20_000, end: MAX_BATCH_BYTES + 30_000 }];
    expect(batches(big)).toEqual([[big[0]], [big[1], big[2]]]);
    const touching = [{ start: 0, end: 10 }, { start: 10, end: 20 }];
    expect(batches(touching)).toEqual([[touching[0]], [touching[1]]]);
  });
});
