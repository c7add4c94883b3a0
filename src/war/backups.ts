import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { warPath, type Context, type WarFile } from '../context.js';
import { parseRevisionWarName, revisionWarName, type Revision } from '../revision.js';
import { ensureDir, installFileAtomically, listDir } from '../system/files.js';

/** A WAR kept in the backup folder, named `letto-<revision>.war`. */
export interface Backup {
  revision: Revision;
  path: string;
  bytes: number;
  /** Modification time, ISO 8601. */
  time: string;
}

/** The backups in `paths.backups`, newest revision first. */
export async function listBackups(ctx: Context): Promise<Backup[]> {
  const dir = ctx.config.paths.backups;
  const backups: Backup[] = [];
  for (const name of await listDir(dir)) {
    const revision = parseRevisionWarName(name);
    if (revision === null) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => null);
    if (!info?.isFile()) continue;
    backups.push({ revision, path, bytes: info.size, time: info.mtime.toISOString() });
  }
  return backups.sort((a, b) => b.revision - a.revision);
}

/** Where the backup of the installed WAR of `revision` goes: `paths.backups/letto-<rev>.war` (`letto-unknown.war` when null). */
export function backupPathFor(ctx: Context, revision: Revision | null): string {
  return join(ctx.config.paths.backups, revision === null ? 'letto-unknown.war' : revisionWarName(revision));
}

/** The temporary name a backup is written under before its rename. */
export function backupTempPath(dest: string): string {
  return `${dest}.tmp`;
}

/**
 * Step "backup": keeps the installed WAR as `paths.backups/letto-<revision>.war` (atomic copy, owned
 * by the service user). An existing backup of the same revision and size is kept as it is. A WAR
 * whose revision is unknown is kept as `letto-unknown.war` (replaced by the next unknown one).
 * @returns the backup, or null when webapps holds no WAR.
 */
export async function backupInstalled(ctx: Context, revision: Revision | null): Promise<WarFile | null> {
  const source = warPath(ctx.config);
  const info = await stat(source).catch(() => null);
  if (!info?.isFile()) return null;
  const dir = ctx.config.paths.backups;
  await ensureDir(dir, ctx.serviceUser);
  const dest = backupPathFor(ctx, revision);
  const existing = await stat(dest).catch(() => null);
  if (existing?.isFile() && existing.size === info.size) {
    ctx.emit({ type: 'step', step: 'backup', message: `Backup of revision ${revision ?? 'unknown'} already in ${dest}` });
    return { path: dest, revision };
  }
  ctx.emit({ type: 'step', step: 'backup', message: `Keeping revision ${revision ?? 'unknown'} as ${dest}` });
  await installFileAtomically(source, dest, backupTempPath(dest), ctx.serviceUser);
  return { path: dest, revision };
}

/**
 * Retention: keeps the newest `paths.keep` backups and never deletes `protect` (the last known-good
 * revision and the one just replaced). @returns the revisions deleted.
 */
export async function pruneBackups(ctx: Context, protect: Array<Revision | null>): Promise<Revision[]> {
  const backups = await listBackups(ctx);
  const deleted: Revision[] = [];
  for (const backup of backups.slice(ctx.config.paths.keep)) {
    if (protect.includes(backup.revision)) continue;
    await rm(backup.path, { force: true });
    deleted.push(backup.revision);
  }
  return deleted;
}
