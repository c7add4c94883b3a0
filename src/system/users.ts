import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';

/** A Linux account: name, numeric ids and home folder (from /etc/passwd). */
export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Parses /etc/passwd (`name:x:uid:gid:gecos:home:shell` per line). */
export async function readAccounts(passwdFile = '/etc/passwd'): Promise<Account[]> {
  const text = await readFile(passwdFile, 'utf8');
  const accounts: Account[] = [];
  for (const line of text.split('\n')) {
    const [name, , uid, gid, , home] = line.split(':');
    if (!name || uid === undefined || gid === undefined) continue;
    accounts.push({ name, uid: Number(uid), gid: Number(gid), home: home ?? '/' });
  }
  return accounts;
}

/** Finds an account by name or uid; null when /etc/passwd has none. */
export async function findAccount(key: string | number): Promise<Account | null> {
  const accounts = await readAccounts();
  return accounts.find((a) => (typeof key === 'number' ? a.uid === key : a.name === key)) ?? null;
}

/** The account this process runs as (for children that must not switch users, e.g. compose). */
export function currentAccount(): Account {
  const me = userInfo();
  return { name: me.username, uid: me.uid, gid: me.gid, home: me.homedir };
}
