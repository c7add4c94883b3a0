/**
 * What an answer's headers say about the file it carries: its validators (ETag, Last-Modified, length),
 * where a 206 lies in the file (Content-Range), and whether two answers are about the same file.
 * RFC 9110 §8.8 (validators), §13.1.5 (If-Range), §14.4 (Content-Range).
 */
import type { TransportResponse } from '../node-transport.js';
import type { Validators } from './types.js';

/** One header's value (the first of several), or null. */
export function header(value: string | string[] | undefined): string | null {
  return typeof value === 'string' ? value : Array.isArray(value) ? (value[0] ?? null) : null;
}

/** The validators of an answer; `total` (bytes) from Content-Range when given, else Content-Length. */
export function validatorsOf(response: TransportResponse, total: number | null): Validators {
  const etag = header(response.headers.etag);
  const length = header(response.headers['content-length']);
  return {
    etag,
    lastModified: header(response.headers['last-modified']),
    total: total ?? (length && /^\d+$/.test(length) ? Number(length) : null),
  };
}

/** `If-Range` needs a strong ETag or a date (RFC 9110 §13.1.5); null when there is neither. */
export function ifRangeValue(v: Validators): string | null {
  if (v.etag && !v.etag.startsWith('W/')) return v.etag;
  return v.lastModified;
}

/** Whether a 206 answer is about the same file as the partial on disk. */
export function sameFile(had: Validators, now: Validators): boolean {
  if (had.etag && now.etag && had.etag !== now.etag) return false;
  if (!had.etag && had.lastModified && now.lastModified && had.lastModified !== now.lastModified) return false;
  if (had.total !== null && now.total !== null && had.total !== now.total) return false;
  return true;
}

/** `bytes 100-199/1000` → {start: 100, total: 1000} (RFC 9110 §14.4); null if unusable. */
export function parseContentRange(value: string | string[] | undefined): { start: number; total: number | null } | null {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(value) ?? '');
  if (!match) return null;
  return { start: Number(match[1]), total: match[3] === '*' ? null : Number(match[3]) };
}

/** `bytes 100-199/1000` → {start: 100, end: 199, total: 1000}; null if unusable. */
export function parseContentRangeFull(value: string | string[] | undefined): { start: number; end: number; total: number | null } | null {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(value) ?? '');
  if (!match) return null;
  return { start: Number(match[1]), end: Number(match[2]), total: match[3] === '*' ? null : Number(match[3]) };
}

/** `bytes * /1000` of a 416 answer → 1000. */
export function contentRangeTotal(value: string | string[] | undefined): number | null {
  const match = /^bytes \*\/(\d+)$/.exec(header(value) ?? '');
  return match ? Number(match[1]) : null;
}
