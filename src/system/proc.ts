import { readFileSync } from 'node:fs';

/*
 * Telling whether the process that wrote a lock still runs. A PID alone is not enough: after a reboot
 * or enough forks the same number belongs to another process, and a lock that trusted it would be
 * obeyed forever. Linux gives each process a start time (field 22 of /proc/<pid>/stat, clock ticks
 * since boot) and each boot an id (/proc/sys/kernel/random/boot_id); together with the PID they name
 * one process for good.
 */

/**
 * `<boot id>:<start ticks>` of process `pid`, or null when it does not exist or /proc cannot tell
 * (not Linux, /proc hidden).
 */
export function processIdentity(pid: number): string | null {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = fields[19]; // field 22 overall
    return start ? `${boot}:${start}` : null;
  } catch {
    return null;
  }
}

/** True when a process with this PID exists (EPERM means it exists but belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when `pid` has exited and waits to be reaped (state Z or X in /proc/<pid>/stat): it runs no more. */
export function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state === 'Z' || state === 'X';
  } catch {
    return false;
  }
}

/**
 * True when the process that recorded (`pid`, `identity`) still runs: the PID is alive and, when an
 * identity was recorded and /proc can tell, it is the same process (not a reused PID, not an earlier boot),
 * and it has not exited (a zombie that PID 1 has not reaped yet counts as gone).
 */
export function isSameProcessAlive(pid: number, identity: string | null | undefined): boolean {
  if (!isAlive(pid) || isZombie(pid)) return false;
  if (!identity) return true;
  const now = processIdentity(pid);
  return now === null || now === identity;
}
