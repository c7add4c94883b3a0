import { createHash, randomBytes, type Hash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { chown, copyFile, link, mkdir, open, readdir, rename, rm, stat, lstat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isAlive } from './proc.js';
import type { Account } from './users.js';

/*
 * The thin file module for files the service user must own. When this process is root, new files
 * and folders are handed to the service user (chown) before they are renamed into place; when it runs
 * as the service user, they are its own already.
 */

/** Hands `path` to `owner` when this process is root (and `owner` is not); otherwise does nothing. */
export async function giveTo(path: string, owner: Account): Promise<void> {
  if (process.getuid?.() === 0 && owner.uid !== 0) await chown(path, owner.uid, owner.gid);
}

/** True when `path` is a regular file (following symlinks); false when it is missing or something else. */
export async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (info) => info.isFile(),
    () => false,
  );
}

/**
 * Size in bytes of the regular file at `path`; 0 when it is missing or not a regular file (a partial
 * download not begun yet).
 * @throws what `stat` throws other than ENOENT (e.g. EACCES).
 */
export async function fileSize(path: string): Promise<number> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
}

/** Creates `path` and missing parents, owned by the service user. */
export async function ensureDir(path: string, owner: Account): Promise<void> {
  const missing: string[] = [];
  for (let dir = path; ; dir = dirname(dir)) {
    try {
      await stat(dir);
      break;
    } catch {
      missing.unshift(dir);
      if (dirname(dir) === dir) break;
    }
  }
  await mkdir(path, { recursive: true, mode: 0o755 });
  for (const dir of missing) await giveTo(dir, owner);
}

/**
 * Copies `src` to `dest` atomically: the copy is written to `temp` (a name TomEE will not deploy, in
 * the same folder as `dest`), given to the service user, flushed to disk, then renamed over `dest`.
 * On failure the temporary file is removed and `dest` is as it was. `beforeRename` runs once the
 * temporary copy is complete and flushed (the fault-injection hook uses it).
 * @throws the file system error (ENOSPC, EACCES…) after cleaning up.
 */
export async function installFileAtomically(src: string, dest: string, temp: string, owner: Account, beforeRename?: () => void): Promise<void> {
  await refuseSymlink(dest);
  try {
    await rm(temp, { force: true });
    await copyFile(src, temp, constants.COPYFILE_EXCL);
    await giveTo(temp, owner);
    const handle = await open(temp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    beforeRename?.();
    await rename(temp, dest);
    await syncDir(dirname(dest));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Refuses to write through a symlink planted at `path` (it could point anywhere). Nothing at `path`
 * (ENOENT, or ENOTDIR: a file where a folder of the path should be) is no symlink; the write that
 * follows says in its own words why it cannot be made.
 */
export async function refuseSymlink(path: string): Promise<void> {
  try {
    const info = await lstat(path);
    if (info.isSymbolicLink()) throw Object.assign(new Error(`${path} is a symbolic link; letto-update never writes through one`), { code: 'ESYMLINK' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
  }
}

/** fsync a folder so a rename in it survives a power loss. */
export async function syncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch {
    // some file systems do not support fsync on folders; the rename is still atomic
  } finally {
    await handle.close();
  }
}

/** Moves a file within one file system (atomic rename), falling back to copy + remove across file systems. */
export async function moveFile(src: string, dest: string): Promise<void> {
  try {
    await rename(src, dest);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await copyFile(src, dest);
    await rm(src, { force: true });
  }
}

/** Lists a folder's entry names; [] when it does not exist. */
export async function listDir(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/**
 * Writes a small file atomically and durably: a temporary file beside it (created with O_EXCL and
 * O_NOFOLLOW, so a planted symlink is never written through), fsync, rename over `path`, fsync of the
 * folder. Owned by `owner`, with exactly `mode` (not narrowed by the umask: a textfile node_exporter reads
 * must be 0644 under a cron umask of 077). On failure the temporary file is removed and `path` is as it was.
 * @throws the file system error (ENOSPC, EACCES, ESYMLINK when `path` is a symlink).
 */
export async function writeFileAtomically(path: string, data: string, owner: Account, mode = 0o644): Promise<void> {
  await refuseSymlink(path);
  const temp = `${path}.tmp-${process.pid}`;
  await rm(temp, { force: true });
  try {
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      await handle.chmod(mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await giveTo(temp, owner);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDir(dirname(path));
}

/**
 * True when the two files have the same bytes (size first, then compared in 1 MiB chunks).
 * A missing file is never the same as anything.
 */
export async function sameContent(a: string, b: string): Promise<boolean> {
  const [infoA, infoB] = await Promise.all([stat(a).catch(() => null), stat(b).catch(() => null)]);
  if (!infoA?.isFile() || !infoB?.isFile() || infoA.size !== infoB.size) return false;
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const bufA = Buffer.alloc(1 << 20);
    const bufB = Buffer.alloc(1 << 20);
    for (let position = 0; position < infoA.size; ) {
      const [ra, rb] = await Promise.all([fa.read(bufA, 0, bufA.length, position), fb.read(bufB, 0, bufB.length, position)]);
      if (ra.bytesRead !== rb.bytesRead || ra.bytesRead === 0) return false; // a file changed under us
      if (!bufA.subarray(0, ra.bytesRead).equals(bufB.subarray(0, rb.bytesRead))) return false;
      position += ra.bytesRead;
    }
    return true;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/**
 * Creates a file with its whole content, only if it does not exist yet: the content goes into a
 * temporary file beside it (`<path>.tmp-<pid>-<random>`), which is then hard-linked to `path` (link(2)
 * fails with EEXIST like O_EXCL does). So `path` never exists empty or half written, even when the
 * process is killed at any instant; a kill leaves at most the temporary file, which the next call
 * removes. On a file system without hard links (vfat, CIFS without Unix extensions: link(2) fails with
 * EPERM, ENOTSUP or ENOSYS) `path` is created with O_EXCL and then written, where a kill in between
 * leaves it empty. Owned by `owner` when given (else by whoever runs this).
 * @returns true when `path` was created, false when it already exists
 * @throws the file system error (ENOSPC, EACCES, …); `path` is then not created
 */
export async function createExclusive(path: string, data: string, owner: Account | null): Promise<boolean> {
  await removeDeadTemporaries(path);
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeNew(temp, data);
    if (owner) await giveTo(temp, owner);
    await link(temp, path).catch(async (error: NodeJS.ErrnoException) => {
      if (!NO_HARD_LINKS.has(error.code ?? '')) throw error;
      await writeNew(path, data);
      if (owner) await giveTo(path, owner);
    });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(temp, { force: true });
  }
}

/** What link(2) fails with on a file system that has no hard links. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Creates `path` (O_EXCL, O_NOFOLLOW, mode 644) and writes `data`; a failed write removes it again.
 * @throws EEXIST when it exists, or the file system error
 */
async function writeNew(path: string, data: string): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    await handle.writeFile(data);
  } catch (error) {
    await handle.close();
    await rm(path, { force: true }); // a full disk: leave no empty file behind
    throw error;
  }
  await handle.close();
}

/** Removes `<path>.tmp-<pid>-<random>` files beside `path` whose writing process is gone (killed mid-write). */
async function removeDeadTemporaries(path: string): Promise<void> {
  const prefix = `${basename(path)}.tmp-`;
  for (const name of await listDir(dirname(path))) {
    const pid = name.startsWith(prefix) ? /^(\d+)-[0-9a-f]+$/.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid && !isAlive(Number(pid))) await rm(join(dirname(path), name), { force: true });
  }
}

/** SHA-256 (hex) of a file on disk, streamed. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await hashFileInto(hash, path);
  return hash.digest('hex');
}

/** Feeds the file at `path` into `hash`: all of it, or its first `bytes` bytes. */
export async function hashFileInto(hash: Hash, path: string, bytes?: number): Promise<void> {
  const range = bytes === undefined ? {} : { start: 0, end: bytes - 1 };
  for await (const chunk of createReadStream(path, { ...range, highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}
