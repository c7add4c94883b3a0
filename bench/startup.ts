/**
 * The start-up section of `npm run bench`: how long `letto-update --version`, `health`, `check` and `metrics` take
 * from exec to exit, and their peak RSS, as `node bin/letto-update.js` and as the single executable,
 * side by side with `node -e 0` and curl doing the same HTTP request, in the same rounds.
 *
 * Set-up: a server layout without TomEE (test/support/cli.ts: status.sh prints a PID); the health page
 * over HTTPS like the default health_url, in a process of its own (bench/health-page.ts, answers at
 * once); the download server (TLS + Basic auth, bench/serve.ts) with a newer stable revision, so
 * `check` exits 100. Options of bench/run.ts: `--startup` (only this section), `--no-startup`,
 * `--startup-runs N` (default 10), `--exe PATH` (default build/letto-update when it exists).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeServerLayout, writeConfig } from '../test/support/cli.js';
import { populateDownloadRoot } from '../test/support/download-server.js';
import { measure, median, startServer, type Sample } from './measure.js';

/** The goals of issue #11 (seconds, MiB). */
const GOALS: Record<string, { seconds: number; rssMiB?: number }> = {
  '--version': { seconds: 0.12 },
  health: { seconds: 0.15, rssMiB: 50 },
  check: { seconds: 0.25 },
};

/** One way of starting letto-update: a label and the command line before the arguments. */
export interface CliUnderTest {
  label: string;
  command: string;
  args: string[];
}

/** A row to measure: what it runs, and which exit codes are its success. */
interface Case {
  label: string;
  command: string;
  args: string[];
  ok: readonly number[];
  goal?: { seconds: number; rssMiB?: number };
  samples: Sample[];
}

/** Starts bench/health-page.ts; resolves with its URL and a stop function. */
async function startHealthPage(): Promise<{ url: string; close(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./health-page.ts', import.meta.url).pathname], { stdio: ['pipe', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.on('exit', (code) => reject(new Error(`health page exited ${code}`)));
  });
  return {
    url,
    close: async () => {
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.stdin.end();
      await exited;
    },
  };
}

/** `count` lines of runs.jsonl: one nightly update a day, every 30th installing a revision with a delta download. */
export function nightlyRuns(count: number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const time = new Date(Date.UTC(2026, 0, 1, 3, 20) + i * 86_400_000).toISOString();
    const update = i % 30 === 0;
    const download = update ? { download: { mode: 'delta', total: 260_000_000, fetched: 3_000_000, reused: 257_000_000, transferred: 3_000_000, reusedFrom: 6800, text: 'fetched 2.9 MiB of 248 MiB' } } : {};
    lines.push(JSON.stringify({ time, command: 'update', from: 6800, to: 6800, result: update ? 'updated' : 'current', durationSeconds: update ? 60 : 0.4, message: 'x', channel: 'stable', available: 6800, cron: true, ...download }));
  }
  return `${lines.join('\n')}\n`;
}

/** `time=0.002s;…` of a health line, in seconds (null when absent). */
function perfdataSeconds(output: string): number | null {
  const match = /time=([\d.]+)s/.exec(output);
  return match ? Number(match[1]) : null;
}

/**
 * Runs the start-up rounds and returns the report as Markdown lines.
 * @param clis the ways of starting letto-update to compare (bin/letto-update.js, the executable).
 * @param runs rounds; each round runs every case once, starting with another case each round.
 */
export async function benchStartup(clis: CliUnderTest[], runs: number): Promise<string[]> {
  const user = 'letto';
  const password = 'bench-secret';
  const root = await mkdtemp(join(tmpdir(), 'letto-bench-startup-'));
  await populateDownloadRoot(root, { stable: 6886, daily: 6887 });
  const server = await startServer(root, user, password);
  const health = await startHealthPage();
  const layout = await makeServerLayout({ revision: 6880 });
  try {
    const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user }, { password, tomee: { health_url: health.url } });
    // `metrics` reads runs.jsonl whole: a year of nightly runs, as a server would have
    await mkdir(layout.state, { recursive: true });
    await writeFile(join(layout.state, 'runs.jsonl'), nightlyRuns(365));
    const caFile = join(layout.root, 'etc/ca.pem');
    const curlConfig = join(layout.root, 'etc/curl.conf');
    await writeFile(curlConfig, `user = "${user}:${password}"\n`, { mode: 0o600 });
    const env = { ...process.env, LETTO_UPDATE_CONFIG: config };
    const cases: Case[] = [
      { label: '`node -e 0`', command: process.execPath, args: ['-e', '0'], ok: [0], samples: [] },
      { label: 'curl: the health page (HTTPS, not verified like loopback)', command: 'curl', args: ['-sSk', '--fail', '-o', '/dev/null', '-w', '%{time_total}', health.url], ok: [0], samples: [] },
      { label: 'curl: stable-revision.txt (TLS, Basic auth)', command: 'curl', args: ['-sS', '--fail', '--cacert', caFile, '--config', curlConfig, '-o', '/dev/null', `${server.url}stable-revision.txt`], ok: [0], samples: [] },
    ];
    for (const cli of clis) {
      cases.push({ label: `${cli.label} --version`, command: cli.command, args: [...cli.args, '--version'], ok: [0], goal: GOALS['--version']!, samples: [] });
      cases.push({ label: `${cli.label} health`, command: cli.command, args: [...cli.args, 'health'], ok: [0], goal: GOALS.health!, samples: [] });
      cases.push({ label: `${cli.label} check`, command: cli.command, args: [...cli.args, 'check'], ok: [100], goal: GOALS.check!, samples: [] });
      // issue #22: `metrics` without --probe reads only local files; it must start as fast as `check`
      cases.push({ label: `${cli.label} metrics`, command: cli.command, args: [...cli.args, 'metrics'], ok: [0], goal: GOALS.check!, samples: [] });
    }
    for (const c of cases) await measure(c.command, c.args, env, c.ok); // warm-up: page cache, TLS session of the server
    for (let i = 0; i < runs; i++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(i + k) % cases.length]!;
        c.samples.push(await measure(c.command, c.args, env, c.ok));
      }
    }
    const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
    const lines = [
      `| command | wall (median) | wall (min … max) | peak RSS (max) | CPU user+sys (median) | goal | met |`,
      '| --- | --- | --- | --- | --- | --- | --- |',
    ];
    let allMet = true;
    for (const c of cases) {
      const wall = median(c.samples.map((s) => s.seconds));
      const walls = c.samples.map((s) => s.seconds);
      const rss = Math.max(...c.samples.map((s) => s.peakRssMiB ?? 0));
      const cpu = median(c.samples.map((s) => s.cpuSeconds ?? 0));
      const met = c.goal ? wall <= c.goal.seconds && (c.goal.rssMiB === undefined || rss <= c.goal.rssMiB) : null;
      if (met === false) allMet = false;
      const goal = c.goal ? `≤ ${ms(c.goal.seconds)}${c.goal.rssMiB ? `, ≤ ${c.goal.rssMiB} MiB` : ''}` : '';
      lines.push(`| ${c.label} | ${ms(wall)} | ${ms(Math.min(...walls))} … ${ms(Math.max(...walls))} | ${rss.toFixed(0)} MiB | ${ms(cpu)} | ${goal} | ${met === null ? '' : met ? 'yes' : '**no**'} |`);
    }
    const curlHealth = cases[1]!.samples.map((s) => Number(s.output.trim()));
    lines.push('', `HTTP request alone: curl's time_total for the health page, median ${ms(median(curlHealth))}.`);
    for (const c of cases.filter((x) => x.args.at(-1) === 'health')) {
      const perf = c.samples.map((s) => perfdataSeconds(s.output)).filter((x): x is number => x !== null);
      lines.push(`${c.label}: perfdata time= median ${perf.length ? ms(median(perf)) : '?'} (its line: \`${c.samples.at(-1)!.output.trim()}\`).`);
    }
    lines.push('', `Start-up goals ${allMet ? 'met' : '**not met**'} (load average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}).`);
    return lines;
  } finally {
    await health.close();
    await server.close();
    await layout.cleanup();
    await rm(root, { recursive: true, force: true });
  }
}

/** The executable of `npm run package` when it was built. */
export function packagedExecutable(repo: string): string | null {
  const path = join(repo, 'build', 'letto-update');
  return existsSync(path) ? path : null;
}
