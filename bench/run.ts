/**
 * `npm run bench`: letto-update's download (the built CLI, a real child process, all verification
 * included) against curl, fetching the same WAR from the same TLS + Basic-auth loopback server,
 * alternating, several runs per size. Prints medians, the ratio and letto-update's peak RSS.
 *
 * Options: `--sizes 256,1024` (MiB), `--runs 5`, `--cache DIR` (generated WARs are kept there;
 * default `$TMPDIR/letto-bench`). Needs `dist/` (`npm run build`) and curl; peak RSS comes from
 * /usr/bin/time when present, else from polling /proc/PID/status (VmHWM).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, stat, writeFile, mkdir, readdir } from 'node:fs/promises';
import { cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { CLI_BIN, makeServerLayout, writeConfig } from '../test/support/cli.js';
import { startDownloadServer } from '../test/support/download-server.js';
import { makeBenchWar } from './make-war.js';

const REVISION = 6886;
const USER = 'letto';
const PASSWORD = 'bench-secret';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

interface Sample {
  seconds: number;
  peakRssMiB: number | null;
}

const HAVE_TIME = existsSync('/usr/bin/time');

/** Runs a command, timing its wall clock (s) and peak RSS (MiB). Throws if it fails. */
async function measure(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  const timeFile = join(tmpdir(), `letto-bench-time-${process.pid}`);
  const [cmd, argv] = HAVE_TIME ? ['/usr/bin/time', ['-f', '%M', '-o', timeFile, command, ...args]] : [command, args];
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
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`);
  if (HAVE_TIME) peakKiB = Number((await readFile(timeFile, 'utf8')).trim().split('\n').at(-1));
  return { seconds, peakRssMiB: peakKiB ? peakKiB / 1024 : null };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function benchSize(mib: number, runs: number, cache: string): Promise<string> {
  const root = join(cache, `root-${mib}`);
  const war = join(root, 'letto-stable.war');
  if (!existsSync(war)) {
    process.stderr.write(`generating a ${mib} MiB WAR in ${war} …\n`);
    await makeBenchWar(war, mib, REVISION);
  }
  await writeFile(join(root, 'stable-revision.txt'), `${REVISION}\r\n`);
  const size = (await stat(war)).size;
  const server = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });
  const layout = await makeServerLayout({ revision: 6880 });
  const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD });
  const caFile = join(layout.root, 'etc/ca.pem');
  const curlConfig = join(layout.root, 'etc/curl.conf');
  // the password goes into a file, not into curl's argv
  await writeFile(curlConfig, `user = "${USER}:${PASSWORD}"\n`, { mode: 0o600 });
  const curlOut = join(layout.root, 'curl.war');
  const env = { ...process.env, LETTO_UPDATE_CONFIG: config };
  const letto: Sample[] = [];
  const curl: Sample[] = [];
  const clearStaging = async () => {
    for (const name of await readdir(layout.staging)) await rm(join(layout.staging, name), { force: true, recursive: true });
    await rm(curlOut, { force: true });
  };
  const runLetto = async () => {
    await clearStaging();
    letto.push(await measure(process.execPath, [CLI_BIN, '--quiet', 'download'], env));
    const staged = await readdir(layout.staging);
    if (!staged.includes(`letto-${REVISION}.war`)) throw new Error(`letto-update left ${staged.join(', ')} in staging`);
  };
  const runCurl = async () => {
    await clearStaging();
    curl.push(await measure('curl', ['-sS', '--fail', '--cacert', caFile, '--config', curlConfig, '-o', curlOut, `${server.url}letto-stable.war`], process.env));
    if ((await stat(curlOut)).size !== size) throw new Error('curl fetched a wrong length');
  };
  try {
    await runLetto(); // warm-up (page cache, TLS session, JIT of the server), not counted
    letto.length = 0;
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) {
        await runLetto();
        await runCurl();
      } else {
        await runCurl();
        await runLetto();
      }
      process.stderr.write(`  ${mib} MiB run ${i + 1}/${runs}: letto-update ${letto.at(-1)!.seconds.toFixed(2)} s, curl ${curl.at(-1)!.seconds.toFixed(2)} s, load ${loadavg()[0]!.toFixed(2)}\n`);
    }
  } finally {
    await server.close();
    await layout.cleanup();
  }
  const l = median(letto.map((s) => s.seconds));
  const c = median(curl.map((s) => s.seconds));
  const rss = Math.max(...letto.map((s) => s.peakRssMiB ?? 0));
  const rate = (s: number) => (size / 1024 / 1024 / s).toFixed(0);
  return `| ${(size / 1024 / 1024).toFixed(0)} MiB | ${runs} | ${l.toFixed(2)} s (${rate(l)} MiB/s) | ${c.toFixed(2)} s (${rate(c)} MiB/s) | ${(l / c).toFixed(2)}× | ${rss.toFixed(0)} MiB | ${letto.map((s) => s.seconds.toFixed(2)).join(' ')} / ${curl.map((s) => s.seconds.toFixed(2)).join(' ')} |`;
}

const sizes = arg('sizes', '256,1024').split(',').map(Number);
const runs = Number(arg('runs', '5'));
const cache = arg('cache', join(tmpdir(), 'letto-bench'));
await mkdir(cache, { recursive: true });
const curlVersion = await new Promise<string>((resolve) => {
  const child = spawn('curl', ['--version']);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.on('close', () => resolve(out.split('\n')[0] ?? ''));
});
const lines = [
  `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM (${(freemem() / 2 ** 30).toFixed(1)} free), node ${process.version}, ${curlVersion}`,
  `load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
  '',
  '| WAR | runs | letto-update download (median) | curl (median) | ratio | letto-update peak RSS | all runs (letto / curl, s) |',
  '| --- | --- | --- | --- | --- | --- | --- |',
];
for (const mib of sizes) lines.push(await benchSize(mib, runs, cache));
lines.push('', `load average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(lines.join('\n'));
