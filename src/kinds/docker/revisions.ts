import type { Context } from '../../context.js';
import type { ServiceRevision } from '../types.js';
import type { Revision } from '../../revision.js';
import type { LettoService } from './compose.js';
import { imageId, localImages, untag } from './engine.js';
import { parseRef, revisionOfTag, revisionOfTags } from './refs.js';

type Images = Array<{ id: string; tags: string[] }>;

/**
 * Each LeTTo service's revision: the revision tag (`docker.revision_tag`) among the tags of the image
 * its container runs, matched by image id (a service without a container: the image its reference
 * names). `revision` is the one the services that are up share (a school the admin stopped is listed,
 * not counted); null when they differ (`mixed`) or none is known.
 */
export async function serviceRevisions(ctx: Context, services: LettoService[]): Promise<{ revision: Revision | null; mixed: boolean; services: ServiceRevision[] }> {
  const docker = ctx.config.docker!;
  const images = await localImages(ctx);
  const list: ServiceRevision[] = [];
  for (const s of services) {
    const id = s.container?.imageId ?? (await imageId(ctx, s.ref));
    const tags = images.find((i) => i.id === id)?.tags ?? [];
    list.push({
      name: `${s.container?.project || s.dir}/${s.service}`,
      ...(s.group.school ? { school: s.group.school } : {}),
      image: s.ref,
      revision: revisionOfTags(docker, s.ref, tags),
      state: s.stopped ? `${s.container?.state ?? 'stopped'} (stopped by the admin: stays stopped, runs the installed revision when started)` : (s.container?.state ?? 'no container'),
      health: s.container?.health ?? null,
    });
  }
  // a stopped school keeps its old container until it is started again (then on the installed revision's tag)
  const counted = list.filter((_, i) => !services[i]!.stopped);
  const distinct = new Set(counted.map((s) => s.revision));
  const mixed = distinct.size > 1;
  return { revision: !mixed && counted.length > 0 ? (counted[0]!.revision ?? null) : null, mixed, services: list };
}

/** Revisions whose image is here for every LeTTo image name in use, newest first, with their image ids by reference. */
export async function localRevisions(ctx: Context, services: LettoService[], images?: Images): Promise<Array<{ revision: Revision; ids: Map<string, string> }>> {
  const docker = ctx.config.docker!;
  const all = images ?? (await localImages(ctx));
  const refs = [...new Set(services.map((s) => s.ref))];
  const byRevision = new Map<Revision, Map<string, string>>();
  for (const ref of refs) {
    const { name } = parseRef(ref);
    for (const image of all) {
      for (const tagged of image.tags) {
        const parsed = parseRef(tagged);
        const revision = parsed.name === name ? revisionOfTag(docker, parsed.tag) : null;
        if (revision === null) continue;
        const ids = byRevision.get(revision) ?? new Map<string, string>();
        ids.set(ref, image.id);
        byRevision.set(revision, ids);
      }
    }
  }
  return [...byRevision]
    .filter(([, ids]) => refs.every((ref) => ids.has(ref)))
    .map(([revision, ids]) => ({ revision, ids }))
    .sort((a, b) => b.revision - a.revision);
}

/**
 * Retention: the images of the newest `paths.keep` revisions stay, and those of `protect` (the one
 * before, the last good one, the one installed) and every image a container uses; the revision tags of
 * older LeTTo images are removed (`docker rmi` without --force: an image still in use stays). Volumes
 * and data folders are never touched. A tag that cannot be removed is reported as a warning.
 * @returns the revisions whose tags were removed.
 */
export async function pruneImages(ctx: Context, services: LettoService[], protect: Array<Revision | null>): Promise<Revision[]> {
  const docker = ctx.config.docker!;
  const images = await localImages(ctx);
  const names = new Set(services.map((s) => parseRef(s.ref).name));
  const inUse = new Set(services.map((s) => s.container?.imageId).filter(Boolean));
  const tagged: Array<{ revision: Revision; ref: string; id: string }> = [];
  for (const image of images) {
    for (const ref of image.tags) {
      const parsed = parseRef(ref);
      const revision = names.has(parsed.name) ? revisionOfTag(docker, parsed.tag) : null;
      if (revision !== null) tagged.push({ revision, ref, id: image.id });
    }
  }
  const revisions = [...new Set(tagged.map((t) => t.revision))].sort((a, b) => b - a);
  const keep = new Set([...revisions.slice(0, ctx.config.paths.keep), ...protect.filter((r): r is Revision => r !== null)]);
  const removed = new Set<Revision>();
  for (const t of tagged) {
    if (keep.has(t.revision) || inUse.has(t.id)) continue;
    const why = await untag(ctx, t.ref);
    if (why) ctx.emit({ type: 'warn', message: `Could not remove the old image ${t.ref} (${why}); it stays.` });
    else removed.add(t.revision);
  }
  return [...removed];
}
