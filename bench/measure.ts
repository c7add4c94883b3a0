/**
 * What the benchmarks share: the download server in a process of its own ({@link startServer}), and
 * how a command is timed: wall clock from spawn to exit, peak RSS and CPU time (user +
 * system) from `/usr/bin/time -f '%M %U %S'` when present, else peak RSS by polling /proc/PID/status.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One run of a command. */
export interface Sample {
  seconds: number;
  peakRssMiB: number | null;
  /** User + system CPU seconds of the process (less disturbed by other load than the wall time). */
  cpuSeconds: number | null;
  /** What the command printed (stdout and stderr). */
  output: string;
}

/** Whether GNU time is there (peak RSS and CPU time from it). */
export const HAVE_TIME = existsSync('/usr/bin/time');

/**
 * Runs a command, timing its wall clock (s) and peak RSS (MiB).
 * @param okCodes exit codes that count as success (default: 0 only).
 * @throws Error with the command's output when it exits with another code.
 */
export async function measure(command: string, args: string[], env: NodeJS.ProcessEnv, okCodes: readonly number[] = [0]): Promise<Sample> {
  const timeFile = join(tmpdir(), `letto-bench-time-${process.pid}`);
  const [cmd, argv] = HAVE_TIME ? ['/usr/bin/time', ['-f', '%M %U %S', '-o', timeFile, command, ...args]] : [command, args];
  const started = performance.now();
  const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let peakKiB = 0;
  const poll = HAVE_TIME
    ? null
    : setInterval(() => {
        readFile(`/proc/${child.pid}/status`, 'utf8').then(
          (text) => {
            const kib = Number(/VmHWM:\s+(\d+)/.exec(text)?.[1] ?? 0);
            peakKiB = Math.max(peakKiB, kib);
          },
          () => undefined,
        );
      }, 20);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const seconds = (performance.now() - started) / 1000;
  if (poll) clearInterval(poll);
  // GNU time exits with the command's code; when the command was killed it says so in the file
  if (code === null || !okCodes.includes(code)) throw new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`);
  let cpuSeconds: number | null = null;
  if (HAVE_TIME) {
    const [rss, user, system] = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
    peakKiB = rss!;
    cpuSeconds = user! + system!;
  }
  return { seconds, peakRssMiB: peakKiB ? peakKiB / 1024 : null, cpuSeconds, output };
}

/** The median of `values` (not empty). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Starts bench/serve.ts as a child process; resolves once it listens. `bytesPerSecond`: null sends as
 * fast as it can; `host`: the address it listens on (default 127.0.0.1, e.g. the veth of a network namespace).
 */
export async function startServer(root: string, user: string, password: string, bytesPerSecond: number | null = null, host?: string): Promise<{ url: string; caPem: string; close(): Promise<void> }> {
  const serve = new URL('./serve.ts', import.meta.url).pathname;
  const args = ['--import', 'tsx', serve, root, user, password, ...(bytesPerSecond || host ? [String(bytesPerSecond ?? 0)] : []), ...(host ? [host] : [])];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.on('exit', (code) => reject(new Error(`bench server exited ${code}`)));
  });
  const { url, caPem } = JSON.parse(line) as { url: string; caPem: string };
  return {
    url,
    caPem,
    close: async () => {
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

