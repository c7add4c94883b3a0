/**
 * The dumps letto-update keeps in `paths.backups`: listed for `rollback` and removed together with
 * the WAR backup of the same revision (`paths.keep`, src/war/backups.ts). Only a `letto-<rev>.<db>.sql.gz`
 * with letto-update's sidecar (`….sql.gz.json`, see src/database/dump.ts) counts as ours: a dump an admin
 * or LeTTo's own backup put there is never listed or removed.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Revision } from '../revision.js';
import { listDir } from '../system/files.js';
import { readDumpRecord, type DumpRecord } from './dump.js';

const DUMP_NAME = /^letto-(\d+|unknown)\.([A-Za-z0-9_$-]+)\.sql\.gz$/;

/** letto-update's dumps in `folder` (those with a readable sidecar), newest revision first. */
export async function listDumps(folder: string): Promise<DumpRecord[]> {
  const dumps: DumpRecord[] = [];
  for (const name of await listDir(folder)) {
    if (!DUMP_NAME.test(name)) continue;
    const record = await readDumpRecord(join(folder, name));
    if (record) dumps.push(record);
  }
  return dumps.sort((a, b) => (b.revision ?? -1) - (a.revision ?? -1) || a.database.localeCompare(b.database));
}

/** The dumps of `revision` in `folder` (one per database). */
export async function dumpsOf(folder: string, revision: Revision): Promise<DumpRecord[]> {
  return (await listDumps(folder)).filter((d) => d.revision === revision);
}

/**
 * Removes letto-update's dumps (and their sidecars) of the revisions in `deleted`: the WAR backups
 * retention just removed. @returns the paths removed.
 */
export async function pruneDumps(folder: string, deleted: Revision[]): Promise<string[]> {
  const removed: string[] = [];
  for (const dump of await listDumps(folder)) {
    if (dump.revision === null || !deleted.includes(dump.revision)) continue;
    await rm(dump.path, { force: true });
    await rm(`${dump.path}.json`, { force: true });
    removed.push(dump.path);
  }
  return removed;
}
