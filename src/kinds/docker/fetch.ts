import type { Context } from '../../context.js';
import { LettoError } from '../../errors.js';
import type { ImagePointer } from '../../store/journal.js';
import type { Fetched, FetchFor } from '../types.js';
import type { Revision } from '../../revision.js';
import { readLettoServices, type LettoService } from './compose.js';
import { imageId, pull } from './engine.js';
import { pullRef } from './refs.js';
import { localRevisions } from './revisions.js';

/** A Docker revision ready to install: the image id of `revision` for every LeTTo image reference the compose files name. */
export interface DockerFetched extends Fetched {
  images: ImagePointer[];
}

/**
 * The LeTTo services of the compose folders, refusing an install where there are none (a wrong
 * `docker.image_prefix` or folder would otherwise "update" nothing and call it done).
 * @throws LettoError (exit 1); nothing was changed.
 */
export async function requireLettoServices(ctx: Context): Promise<LettoService[]> {
  const services = await readLettoServices(ctx);
  if (services.length === 0) {
    const docker = ctx.config.docker!;
    throw new LettoError(`No service in ${docker.compose_dirs.join(', ')} uses an image whose name starts with "${docker.image_prefix}". Nothing was changed.`, {
      hint: 'Check docker.compose_dirs and docker.image_prefix in the config (`docker compose config` in each folder shows the images).',
    });
  }
  return services;
}

/**
 * Step "download" of a Docker install: every LeTTo image of `revision` (`<registry>/<name>:rev<N>`) is
 * pulled — for a rollback only when it is not kept locally — before anything is stopped; then each is
 * checked to be here. One missing image refuses the whole revision, so services never mix revisions.
 * @throws LettoError (exit 1) naming every image that could not be had and why; nothing was changed.
 */
export async function fetchImages(ctx: Context, revision: Revision, why: FetchFor): Promise<DockerFetched> {
  const docker = ctx.config.docker!;
  const services = await requireLettoServices(ctx);
  const refs = [...new Set(services.map((s) => s.ref))];
  const kept = why.purpose === 'rollback' ? (await localRevisions(ctx, services)).find((r) => r.revision === revision) : undefined;
  const failures: string[] = [];
  const images: ImagePointer[] = [];
  for (const [i, ref] of refs.entries()) {
    const local = kept?.ids.get(ref);
    if (local) {
      images.push({ ref, id: local });
      continue;
    }
    const source = pullRef(docker, ref, revision);
    ctx.emit({ type: 'step', step: 'download', message: `Pulling ${source} (${i + 1} of ${refs.length})` });
    const failed = await pull(ctx, source);
    const id = await imageId(ctx, source);
    if (failed && id) {
      // the registry could not be asked, but this very revision was pulled before: a tag names one revision's image
      ctx.emit({ type: 'warn', message: `Could not pull ${source} (${failed}); using the copy pulled before.` });
    }
    if (id) images.push({ ref, id });
    else failures.push(`${source}: ${failed ?? 'not there after the pull'}`);
  }
  if (failures.length > 0) {
    const denied = failures.some((f) => /unauthori[sz]ed|authentication required|denied|no basic auth credentials|401/i.test(f));
    const registry = docker.registry || 'Docker Hub';
    throw new LettoError(`Revision ${revision} cannot be installed: ${failures.length} of ${refs.length} LeTTo images could not be pulled (${failures.join('; ')}). Nothing was changed; every service keeps its revision.`, {
      hint: denied
        ? `The registry ${registry} refused the credentials: run \`docker login ${docker.registry}\` as the user that runs letto-update (or fix DOCKER_CONFIG), then run again.`
        : `Check that revision ${revision} is published for every image (\`letto-update list --remote\`) and that ${registry} is reachable; docker.registry and docker.revision_tag name where and how.`,
    });
  }
  return { revision, where: images.map((i) => i.ref).join(', '), images };
}
