/**
 * Whether an account may read, write or execute a path, judged from the mode bits, the owner and the
 * account's groups (primary from /etc/passwd, supplementary from /etc/group), as the kernel does
 * without ACLs. For `update --dry-run`, which must say whether the service user could run a script or
 * write a folder without switching to that user. Root may read and write anything and execute what has
 * any execute bit. A read-only file system is not seen here (the caller asks `fs.access` for that).
 */
import { readFile, stat } from 'node:fs/promises';
import type { Account } from './users.js';

const BITS = { r: 4, w: 2, x: 1 } as const;

/** The gids of `account`: its primary group and every group in `groupFile` that lists its name. */
export async function groupsOf(account: Account, groupFile = '/etc/group'): Promise<number[]> {
  const text = await readFile(groupFile, 'utf8').catch(() => '');
  const gids = [account.gid];
  for (const line of text.split('\n')) {
    const [, , gid, members] = line.split(':');
    if (gid !== undefined && members?.split(',').map((m) => m.trim()).includes(account.name)) gids.push(Number(gid));
  }
  return gids;
}

/**
 * Whether `account` may `want` (r, w or x) `path` by its mode bits.
 * @throws the stat error (ENOENT…) when `path` cannot be looked at.
 */
export async function mayAccess(path: string, account: Account, want: keyof typeof BITS): Promise<boolean> {
  const info = await stat(path);
  const bit = BITS[want];
  if (account.uid === 0) return want !== 'x' || info.isDirectory() || (info.mode & 0o111) !== 0;
  if (info.uid === account.uid) return ((info.mode >> 6) & bit) !== 0;
  if ((await groupsOf(account)).includes(info.gid)) return ((info.mode >> 3) & bit) !== 0;
  return (info.mode & bit) !== 0;
}
