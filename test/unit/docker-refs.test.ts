import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { isLettoRef, parseRef, pullRef, revisionOfTag, revisionOfTags, revisionTag } from '../../src/kinds/docker/refs.js';
import { adapters, kindOf } from '../../src/kinds/index.js';

const docker = { compose_dirs: ['/x'], image_prefix: 'lettohub/', registry: '', revision_tag: 'rev{revision}', health_url: '', health_timeout: 300, compose: '', command: 'docker' };

describe('image references', () => {
  it.each([
    ['lettohub/lettoserver:stable', { registry: null, name: 'lettohub/lettoserver', tag: 'stable' }],
    ['lettohub/lettoserver', { registry: null, name: 'lettohub/lettoserver', tag: 'latest' }],
    ['localhost:5000/lettohub/lettoserver:rev6886', { registry: 'localhost:5000', name: 'lettohub/lettoserver', tag: 'rev6886' }],
    ['registry.example.org/lettohub/letto-proxy@sha256:abc', { registry: 'registry.example.org', name: 'lettohub/letto-proxy', tag: 'latest' }],
    ['127.0.0.1:5000/x/y:1', { registry: '127.0.0.1:5000', name: 'x/y', tag: '1' }],
    ['mysql:8', { registry: null, name: 'mysql', tag: '8' }],
  ])('%s', (ref, parsed) => {
    expect(parseRef(ref)).toEqual(parsed);
  });

  it('LeTTo images are those whose name (without registry) starts with image_prefix', () => {
    expect(isLettoRef('lettohub/lettoserver:stable', docker)).toBe(true);
    expect(isLettoRef('localhost:5000/lettohub/letto-setup:daily', docker)).toBe(true);
    expect(isLettoRef('mysql:8', docker)).toBe(false);
    expect(isLettoRef('nginx', docker)).toBe(false);
  });

  it('revision tags follow revision_tag, and nothing else is a revision', () => {
    expect(revisionTag(docker, 6886)).toBe('rev6886');
    expect(revisionOfTag(docker, 'rev6886')).toBe(6886);
    for (const tag of ['stable', 'daily', 'revF001', 'rev', 'rev0', 'rev6669/6670', 'xrev6886']) expect(revisionOfTag(docker, tag)).toBeNull();
    const custom = { ...docker, revision_tag: 'r{revision}-jdk21' };
    expect(revisionOfTag(custom, 'r6886-jdk21')).toBe(6886);
    expect(revisionOfTag(custom, 'r6886')).toBeNull();
  });

  it('pulls from the registry mirror when one is set, else from Docker Hub', () => {
    expect(pullRef(docker, 'lettohub/lettoserver:stable', 6886)).toBe('lettohub/lettoserver:rev6886');
    expect(pullRef({ ...docker, registry: 'localhost:5000' }, 'lettohub/lettoserver:stable', 6886)).toBe('localhost:5000/lettohub/lettoserver:rev6886');
  });

  it('the revision of an image is read from a tag of the same image name, with or without registry', () => {
    expect(revisionOfTags(docker, 'lettohub/lettoserver:stable', ['lettohub/lettoserver:stable', 'localhost:5000/lettohub/lettoserver:rev6886'])).toBe(6886);
    expect(revisionOfTags(docker, 'lettohub/lettoserver:stable', ['lettohub/letto-setup:rev6886'])).toBeNull();
  });
});

describe('[docker] config', () => {
  async function load(text: string, env: NodeJS.ProcessEnv = {}) {
    const dir = await mkdtemp(join(tmpdir(), 'lu-docker-config-'));
    try {
      await writeFile(join(dir, 'config.toml'), text);
      return await loadConfig(join(dir, 'config.toml'), env);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('a [docker] section makes a Docker install, with the documented defaults', async () => {
    const { config } = await load('[docker]\ncompose_dirs = ["/opt/letto/docker/compose/setup", "/opt/letto/docker/compose/letto"]\n');
    expect(kindOf(config)).toBe('docker');
    expect(config.docker).toEqual({
      compose_dirs: ['/opt/letto/docker/compose/setup', '/opt/letto/docker/compose/letto'],
      image_prefix: 'lettohub/',
      registry: '',
      revision_tag: 'rev{revision}',
      health_url: 'https://localhost/letto/test.jsf',
      health_timeout: 300,
      compose: '',
      command: 'docker',
    });
  });

  it('without it, a TomEE install as before', async () => {
    const { config } = await load('[server]\nchannel = "daily"\n');
    expect(kindOf(config)).toBe('tomee');
    expect(config.docker).toBeUndefined();
  });

  it('names the key and the fix for a revision_tag without {revision} and a registry with a scheme', async () => {
    await expect(load('[docker]\ncompose_dirs = ["/x"]\nrevision_tag = "stable"\n')).rejects.toThrow(/revision_tag.*\{revision\}/s);
    await expect(load('[docker]\ncompose_dirs = ["/x"]\nregistry = "https://localhost:5000"\n')).rejects.toThrow(/registry.*without https/s);
  });

  it('LETTO_UPDATE_DOCKER_* variables are settings too (compose_dirs separated by commas)', async () => {
    const { config } = await load('', { LETTO_UPDATE_DOCKER_COMPOSE_DIRS: '/a,/b', LETTO_UPDATE_DOCKER_HEALTH_TIMEOUT: '60' });
    expect(config.docker).toMatchObject({ compose_dirs: ['/a', '/b'], health_timeout: 60 });
  });

  it('every kind has an adapter with the whole interface', () => {
    for (const adapter of Object.values(adapters)) {
      for (const method of ['installed', 'beforeFetch', 'fetch', 'install', 'conclude', 'recover', 'runtime', 'restart', 'health', 'waitHealthy', 'listLocal', 'listRemote'] as const) {
        expect(typeof adapter[method], `${adapter.kind}.${method}`).toBe('function');
      }
    }
  });
});
