import type { DockerConfig } from '../../config/config.js';
import type { Revision } from '../../revision.js';

/**
 * An image reference split as Docker reads it: `[registry[:port]/]name[:tag][@digest]`. The first path
 * component is a registry host when it has a `.` or a `:` or is `localhost` (the rule of
 * distribution/reference, "normalize.go").
 */
export interface ParsedRef {
  registry: string | null;
  /** The repository path without the registry, e.g. `lettohub/lettoserver`. */
  name: string;
  /** The tag; `latest` when the reference names none. */
  tag: string;
}

/** Splits an image reference (see {@link ParsedRef}); a digest part is dropped. */
export function parseRef(ref: string): ParsedRef {
  const noDigest = ref.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  const tag = colon > slash ? noDigest.slice(colon + 1) : 'latest';
  const repo = colon > slash ? noDigest.slice(0, colon) : noDigest;
  const first = repo.split('/')[0]!;
  const hasRegistry = repo.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  return { registry: hasRegistry ? first : null, name: hasRegistry ? repo.slice(first.length + 1) : repo, tag };
}

/**
 * The repository of an image reference as it is written, registry included, without tag or digest:
 * `localhost:5000/lettohub/lettoserver` for `localhost:5000/lettohub/lettoserver:stable`,
 * `lettohub/lettoserver` for `lettohub/lettoserver:stable`.
 */
export function repositoryOf(ref: string): string {
  const { registry, name } = parseRef(ref);
  return registry ? `${registry}/${name}` : name;
}

/** A LeTTo image: its name (without registry) starts with `docker.image_prefix`. */
export function isLettoRef(ref: string, docker: DockerConfig): boolean {
  return parseRef(ref).name.startsWith(docker.image_prefix);
}

/** The tag of `revision`: `docker.revision_tag` with `{revision}` replaced, e.g. `rev6886`. */
export function revisionTag(docker: DockerConfig, revision: Revision): string {
  return docker.revision_tag.replace('{revision}', String(revision));
}

/** The revision a tag names under `docker.revision_tag` (`rev6886` → 6886), else null. */
export function revisionOfTag(docker: DockerConfig, tag: string): Revision | null {
  const [before, after] = docker.revision_tag.split('{revision}') as [string, string];
  if (!tag.startsWith(before) || !tag.endsWith(after)) return null;
  const middle = tag.slice(before.length, tag.length - after.length);
  return /^\d+$/.test(middle) && Number(middle) > 0 ? Number(middle) : null;
}

/**
 * Where `revision` of the image `ref` is pulled from: `<docker.registry>/<name>:<revision tag>`, or
 * Docker Hub's `<name>:<revision tag>` when no registry is set.
 */
export function pullRef(docker: DockerConfig, ref: string, revision: Revision): string {
  const { name } = parseRef(ref);
  return `${docker.registry ? `${docker.registry}/` : ''}${name}:${revisionTag(docker, revision)}`;
}

/** The revision named by any of an image's tags (`RepoTags`) of the same repository name as `ref`, else null. */
export function revisionOfTags(docker: DockerConfig, ref: string, repoTags: string[]): Revision | null {
  const { name } = parseRef(ref);
  for (const tagged of repoTags) {
    const parsed = parseRef(tagged);
    if (parsed.name !== name) continue;
    const revision = revisionOfTag(docker, parsed.tag);
    if (revision !== null) return revision;
  }
  return null;
}
