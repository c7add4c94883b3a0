import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { warPath, type Context, type WarFile } from '../../context.js';
import { injectFault } from '../../system/fault.js';
import { installFileAtomically, refuseSymlink } from '../../system/files.js';

/**
 * The temporary name a new WAR is written under inside webapps: hidden and not ending in `.war`,
 * so TomEE never deploys it as a second application (see DOMAIN.md).
 */
export function swapTempName(warName: string): string {
  return `.${warName}.letto-update.tmp`;
}

/** The temporary path of the swap: `webapps/.<war_name>.letto-update.tmp`. */
export function swapTempPath(ctx: Context): string {
  return join(ctx.config.tomee.webapps, swapTempName(ctx.config.tomee.war_name));
}

/** The folder TomEE unpacks the WAR into: `webapps/<war_name without .war>`. */
export function explodedPath(ctx: Context): string {
  return join(ctx.config.tomee.webapps, ctx.config.tomee.war_name.replace(/\.war$/, ''));
}

/**
 * Step "swap": replaces `webapps/<war_name>` with `war` atomically (copy to the temporary name, owned
 * by the service user, fsync, rename) and removes the exploded folder `webapps/<name>/` so TomEE
 * deploys the new WAR on its next start. Call only while TomEE is stopped.
 * @throws the file system error; the installed WAR is then unchanged.
 */
export async function swapWar(ctx: Context, war: WarFile): Promise<void> {
  const dest = warPath(ctx.config);
  ctx.emit({ type: 'step', step: 'swap', message: `Installing revision ${war.revision ?? 'unknown'} as ${dest}` });
  await installFileAtomically(war.path, dest, swapTempPath(ctx), ctx.serviceUser, () => injectFault('swap:copied'));
  injectFault('swap:renamed');
  const exploded = explodedPath(ctx);
  await refuseSymlink(exploded);
  await rm(exploded, { recursive: true, force: true });
}
