/**
 * Step "backup" of a Docker install (keepRunningImages, src/kinds/docker/install.ts) against the real
 * Docker engine: the images running now keep a revision tag, in the names they already have (issue 23,
 * item 10). The Docker suite (test/support/docker-suite.ts) covers compose files that name the images
 * without a registry (`lettohub/…:stable`, pulled from a mirror); this covers compose files that name the
 * registry (`localhost:18500/lettohub/…:stable`), where the old code added a short `lettohub/…:revN`
 * that looks as if it came from Docker Hub. The images are empty ones (`docker import` of an empty tar).
 */
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { configSchema } from '../../src/config/config.js';
import type { Context } from '../../src/context.js';
import { keepRunningImages } from '../../src/kinds/docker/install.js';
import { describeWithDocker } from '../support/describe-docker.js';

describeWithDocker('Docker: the running images keep a revision tag in the names they already have', () => {
  const prefix = `${process.env.LETTO_TEST_DOCKER_PREFIX ?? 'lu-docker'}-keep-${process.pid.toString(36)}`;
  const registry = 'localhost:18500';
  /** Two distinct images (ids), each known by the compose reference its service names. */
  const images: Array<{ ref: string; id: string }> = [];
  let ctx: Context;

  const tags = async (): Promise<string[]> =>
    (await execa('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter((t) => t.includes(prefix)).sort();

  beforeAll(async () => {
    for (const [i, name] of ['lettoserver', 'letto-service-login'].entries()) {
      const ref = `${registry}/${prefix}/${name}:stable`;
      // an empty image; the label makes the two differ (an import of the same empty tar twice gives one id)
      await execa('docker', ['import', '--change', `LABEL letto-update-test=${prefix}-${i}`, '-', ref], { input: Buffer.alloc(1024) });
      images.push({ ref, id: (await execa('docker', ['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim() });
    }
    const config = configSchema.parse({ docker: { compose_dirs: ['/nonexistent'], image_prefix: `${prefix}/` } });
    ctx = { config, emit: () => undefined } as unknown as Context;
  }, 120_000);

  afterAll(async () => {
    const mine = await tags().catch(() => []);
    if (mine.length) await execa('docker', ['rmi', '--force', ...mine], { reject: false });
  }, 60_000);

  it('an image known as <registry>/<name>:stable gets <registry>/<name>:rev6880, not <name>:rev6880', async () => {
    await keepRunningImages(ctx, images, 6880);
    expect(await tags()).toEqual(
      [...images.map((i) => i.ref), ...images.map((i) => i.ref.replace(':stable', ':rev6880'))].sort(),
    );
  });

  it('an image that has the revision tag already (as pulled) gets no other; an unknown revision is kept as letto-update-previous in the same repository', async () => {
    const before = await tags();
    await keepRunningImages(ctx, images, 6880);
    expect(await tags()).toEqual(before);
    await keepRunningImages(ctx, images, null);
    expect(await tags()).toEqual([...before, ...images.map((i) => i.ref.replace(':stable', ':letto-update-previous'))].sort());
  });
});
