import { stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { warPath, type Context } from '../../context.js';
import { LettoError } from '../../errors.js';
import { revisionWarName, type Revision } from '../../revision.js';
import { fileSize } from '../../system/files.js';

const MIB = 1024 * 1024;

/** One file system that must have room, with the folders on it and the bytes this run needs there. */
export interface SpaceNeed {
  folders: string[];
  freeBytes: number;
  neededBytes: number;
}

/**
 * Step "space", before the download: the staging, backup and webapps folders must have room for
 * what this run writes. The size of the new WAR is estimated as the larger of the installed WAR and a
 * WAR of `target` already in staging (a new revision is about as big as the last one). Each of the
 * three folders gets one WAR written into it (the download, the backup, the temporary copy of the
 * swap); each file system additionally keeps one more WAR of headroom (Tomcat unpacks the WAR
 * beside it) plus `paths.free_space_margin` MiB. So on three separate file systems each needs
 * 2 × WAR + margin; when all three share one, it needs 4 × WAR + margin.
 *
 * @param warBytes the new WAR's real size when known (`update --dry-run` asks the server with a HEAD);
 *   otherwise the estimate above.
 * @returns what was checked, per file system (free and needed bytes).
 * @throws LettoError (exit 1, nothing changed) naming the folder, the free and the needed MiB.
 */
export async function checkFreeSpace(ctx: Context, target: Revision, warBytes?: number): Promise<SpaceNeed[]> {
  const { staging, backups } = ctx.config.paths;
  const { webapps } = ctx.config.tomee;
  warBytes ??= Math.max(await fileSize(warPath(ctx.config)), await fileSize(join(staging, revisionWarName(target))));
  const margin = ctx.config.paths.free_space_margin * MIB;
  const byDevice = new Map<number, { folders: string[]; existing: string }>();
  for (const folder of [staging, backups, webapps]) {
    const existing = await nearestExisting(folder);
    const dev = (await stat(existing)).dev;
    const entry = byDevice.get(dev) ?? { folders: [], existing };
    entry.folders.push(folder);
    byDevice.set(dev, entry);
  }
  const needs: SpaceNeed[] = [];
  for (const { folders, existing } of byDevice.values()) {
    const info = await statfs(existing);
    const freeBytes = Number(info.bavail) * Number(info.bsize);
    const neededBytes = (folders.length + 1) * warBytes + margin;
    needs.push({ folders, freeBytes, neededBytes });
    if (freeBytes < neededBytes) {
      throw new LettoError(
        `Not enough free disk space for ${folders.join(', ')}: ${mib(freeBytes)} free, ${mib(neededBytes)} needed (${folders.length + 1} × the WAR's ${mib(warBytes)} + ${ctx.config.paths.free_space_margin} MiB margin). Nothing was changed.`,
        { hint: `Free space on that file system (old backups in ${backups}, TomEE's logs), then run again; paths.free_space_margin sets the margin.` },
      );
    }
  }
  return needs;
}

/** The folder itself, or its nearest parent that exists (staging and backups are created later). */
async function nearestExisting(folder: string): Promise<string> {
  for (let dir = folder; ; dir = dirname(dir)) {
    if (await stat(dir).then(() => true, () => false)) return dir;
    if (dirname(dir) === dir) return dir;
  }
}

function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}
