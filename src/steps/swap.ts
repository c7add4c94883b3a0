import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { warPath, type Context, type WarFile } from '../context.js';
import { installFileAtomically, refuseSymlink } from '../system/files.js';

/**
 * The temporary name a new WAR is written under inside webapps: hidden and not ending in `.war`,
 * so TomEE never deploys it as a second application (see DOMAIN.md).
 */
export function swapTempName(warName: string): string {
  return `.${warName}.letto-update.tmp`;
}

/**
 * Step "swap": replaces `webapps/<war_name>` with `war` atomically (copy to the temporary name, owned
 * by the service user, fsync, rename) and removes the exploded folder `webapps/<name>/` so TomEE
 * deploys the new WAR on its next start. Call only while TomEE is stopped.
 * @throws the file system error; the installed WAR is then unchanged.
 */
export async function swapWar(ctx: Context, war: WarFile): Promise<void> {
  const { webapps, war_name } = ctx.config.tomee;
  const dest = warPath(ctx.config);
  ctx.emit({ type: 'step', step: 'swap', message: `Installing revision ${war.revision ?? 'unknown'} as ${dest}` });
  await installFileAtomically(war.path, dest, join(webapps, swapTempName(war_name)), ctx.serviceUser);
  const exploded = join(webapps, war_name.replace(/\.war$/, ''));
  await refuseSymlink(exploded);
  await rm(exploded, { recursive: true, force: true });
}
