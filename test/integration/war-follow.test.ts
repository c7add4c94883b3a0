/**
 * WarFollower: verifying a WAR while it is written, against real files built with yazl and copied
 * in pieces the way a download writes them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSizedWar } from '../../fixtures/sized-war.js';
import { buildWar } from '../../fixtures/build-war.js';
import { VerifyError } from '../../src/errors.js';
import { WarFollower, type FollowedScan } from '../../src/war/follow.js';
import { verifyWar } from '../../src/war/verify.js';

let dir: string;
let war: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'letto-follow-'));
  await buildSizedWar(join(dir, 'source.war'), 3, 6886);
  war = await readFile(join(dir, 'source.war'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `bytes` to `dest` in pieces of `piece` bytes, telling the follower after each, like a download. */
async function follow(bytes: Buffer, dest: string, piece = 64 * 1024): Promise<FollowedScan | null> {
  const follower = new WarFollower(dest);
  const handle = await open(dest, 'w');
  try {
    for (let at = 0; at < bytes.length; at += piece) {
      const chunk = bytes.subarray(at, at + piece);
      await handle.write(chunk, 0, chunk.length, at);
      follower.written(at + chunk.length);
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    await handle.close();
  }
  return follower.finish(bytes.length);
}

describe('WarFollower', () => {
  it('checks every entry while the file grows; verifyWar then only matches the central directory', async () => {
    const dest = join(dir, 'good.war');
    const scan = await follow(war, dest);
    expect(scan).not.toBeNull();
    expect(scan!.revisionText?.trim()).toBe('6886');
    const info = await verifyWar(dest, 6886, scan);
    const full = await verifyWar(dest, 6886);
    expect(info).toEqual(full);
    expect(info.entries).toBe(scan!.entries.size);
  });

  it('finds a damaged byte in an entry (CRC-32) before the central directory is even read', async () => {
    const damaged = Buffer.from(war);
    damaged[Math.floor(damaged.length / 2)]! ^= 0xff;
    await expect(follow(damaged, join(dir, 'damaged.war'))).rejects.toThrow(VerifyError);
    await expect(follow(damaged, join(dir, 'damaged.war'))).rejects.toThrow(/fails its (CRC-32|length) check/);
  });

  it('a central directory that does not describe the checked entries is refused', async () => {
    const dest = join(dir, 'cd.war');
    const scan = await follow(war, dest);
    // change the CRC-32 recorded in the first central directory header only
    const tampered = Buffer.from(war);
    const cd = tampered.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    tampered.writeUInt32LE((tampered.readUInt32LE(cd + 16) ^ 1) >>> 0, cd + 16);
    await writeFile(dest, tampered);
    await expect(verifyWar(dest, 6886, scan)).rejects.toThrow(/central directory entry .* does not match/);
  });

  it('gives up on entries with a data descriptor (sizes after the data); the full pass still verifies', async () => {
    const source = join(dir, 'descriptor-source.war');
    await buildWar(source, { revision: 6886, padBytes: 300_000, extraEntries: { 'WEB-INF/lib/a.jar': randomBytes(2000) } });
    const bytes = await readFile(source);
    const dest = join(dir, 'descriptor.war');
    const scan = await follow(bytes, dest, 4096);
    expect(scan).toBeNull();
    expect((await verifyWar(dest, 6886, scan)).revision).toBe(6886);
  });

  it('reports a damaged entry through onDamage as soon as it is found, long before the file is complete', async () => {
    const damaged = Buffer.from(war);
    // a byte in the middle of the first entry larger than 100 kB (an early jar)
    let offset = 0;
    for (;;) {
      const compressed = damaged.readUInt32LE(offset + 18);
      const data = offset + 30 + damaged.readUInt16LE(offset + 26) + damaged.readUInt16LE(offset + 28);
      if (compressed > 100_000) {
        damaged[data + (compressed >> 1)]! ^= 0xff;
        break;
      }
      offset = data + compressed;
    }
    const dest = join(dir, 'early.war');
    let reportedAt: number | null = null;
    let onDisk = 0;
    const follower = new WarFollower(dest, (error) => {
      expect(error).toBeInstanceOf(VerifyError);
      reportedAt = onDisk;
    });
    const handle = await open(dest, 'w');
    try {
      for (let at = 0; at < damaged.length && reportedAt === null; at += 64 * 1024) {
        const chunk = damaged.subarray(at, at + 64 * 1024);
        await handle.write(chunk, 0, chunk.length, at);
        onDisk = at + chunk.length;
        follower.written(onDisk);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    } finally {
      await handle.close();
    }
    expect(reportedAt).not.toBeNull();
    expect(reportedAt!).toBeLessThan(damaged.length / 2);
    await expect(follower.finish(damaged.length)).rejects.toThrow(/fails its CRC-32 check/);
  });

  it('stops quietly when aborted (the download failed or restarts)', async () => {
    const follower = new WarFollower(join(dir, 'never.war'));
    follower.abort();
    await expect(follower.finish(0)).resolves.toBeNull();
  });
});
