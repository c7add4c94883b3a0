import type { Revision } from '../../revision.js';

/**
 * What a download fetched, for the log, `download --json` and the run record. Units: bytes.
 * `fetched + reused = total`; `transferred` is what this run received (an interrupted download's
 * earlier part not included).
 */
export interface TransferSummary {
  /** `delta`: assembled from local entries and ranges of the remote WAR; `full`: the whole file. */
  mode: 'delta' | 'full';
  total: number;
  fetched: number;
  reused: number;
  transferred: number;
  /** The revision most reused bytes came from (null: unknown, or nothing reused). */
  reusedFrom: Revision | null;
  /** "fetched 12.3 MiB of 248 MiB; 95 % reused from revision 6885". */
  text: string;
}

/** Builds a {@link TransferSummary} with its sentence. */
export function summarize(mode: TransferSummary['mode'], total: number, fetched: number, transferred: number, reusedFrom: Revision | null): TransferSummary {
  const reused = Math.max(0, total - fetched);
  let text = `fetched ${mib(fetched)} of ${mib(total)}`;
  if (reused > 0) text += `; ${Math.floor((reused / Math.max(total, 1)) * 100)} % reused${reusedFrom !== null ? ` from revision ${reusedFrom}` : ''}`;
  return { mode, total, fetched, reused, transferred, reusedFrom, text };
}

/** Bytes as MiB: one decimal below 100 MiB, whole numbers above ("12.3 MiB", "248 MiB"). */
export function mib(bytes: number): string {
  const value = bytes / (1024 * 1024);
  return `${value >= 100 ? Math.round(value) : Math.round(value * 10) / 10} MiB`;
}
