/**
 * `npm run bench`: first the start-up of `--version`, `health` and `check` (bench/startup.ts: as
 * bin/letto-update.js and as the executable of `npm run package`, beside `node -e 0` and curl), then
 * letto-update's download (the built CLI, a real child process, all verification
 * included) against curl, fetching the same WAR from the same TLS + Basic-auth loopback server,
 * alternating, several runs per size. Prints medians, the ratio, letto-update's peak RSS and both
 * processes' CPU time (user + system).
 *
 * The server runs in a child process of its own (bench/serve.ts), so the benchmark's own event loop
 * and GC disturb neither client.
 *
 * Options: `--sizes 256,1024` (MiB), `--runs 5`, `--cache DIR` (generated WARs are kept there;
 * default `$TMPDIR/letto-bench`), `--line MBIT` (a second scenario: the server sends no faster than
 * MBIT Mbit/s, e.g. 1000 or 100, like a school's line; default: unthrottled loopback only), `--cli PATH`
 * (another build's bin/letto-update.js, to compare two versions; default: this checkout's), `--no-floor`
 * (skip the reference clients of bench/floor-client.mjs, which otherwise run in every round beside
 * letto-update and curl); `--startup` (only the start-up section), `--no-startup`, `--startup-runs N`
 * (default 10), `--exe PATH` (the executable; default build/letto-update when it exists), `--before PATH`
 * (another build's bin/letto-update.js measured in the same start-up rounds, e.g. the commit before a change). Needs `dist/` (`npm run build`) and curl; peak RSS comes from
 * /usr/bin/time when present, else from polling /proc/PID/status (VmHWM).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, stat, writeFile, mkdir, readdir } from 'node:fs/promises';
import { cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { CLI_BIN, REPO_ROOT, makeServerLayout, writeConfig } from '../test/support/cli.js';
import { buildSizedWar } from '../fixtures/sized-war.js';
import { HAVE_TIME, measure, median, startServer, type Sample } from './measure.js';
import { benchStartup, packagedExecutable, type CliUnderTest } from './startup.js';

// `--delta`: the delta download benchmark (bench/delta.ts, its own options and report) instead of this one
if (process.argv.includes('--delta')) {
  await import('./delta.js');
  process.exit(0);
}
// `--textfile`: what [metrics] textfile adds to `update` (bench/textfile.ts)
if (process.argv.includes('--textfile')) {
  await import('./textfile.js');
  process.exit(0);
}
// `--database`: the database dump and restore benchmark (bench/database.ts) instead of this one
if (process.argv.includes('--database')) {
  await import('./database.js');
  process.exit(0);
}

const REVISION = 6886;
const USER = 'letto';
const PASSWORD = 'bench-secret';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** The reference clients of bench/floor-client.mjs, in the order of the report. */
const FLOORS = [
  { mode: 'receive', label: 'Node: receive only (node:https, body discarded)' },
  { mode: 'hash-write', label: 'Node: receive + SHA-256 + write (one thread)' },
  { mode: 'hash-worker', label: 'Node: receive + write, SHA-256 on a worker thread' },
  { mode: 'hash-file', label: 'Node: SHA-256 of the WAR from the page cache, no network' },
] as const;

interface SizeResult {
  /** The row of the main table (letto-update against curl). */
  row: string;
  /** Rows of the reference table (each reference client against curl). */
  floorRows: string[];
}

async function benchSize(mib: number, runs: number, cache: string, bytesPerSecond: number | null, floors: boolean): Promise<SizeResult> {
  const root = join(cache, `root-${mib}`);
  const war = join(root, 'letto-stable.war');
  if (!existsSync(war)) {
    process.stderr.write(`generating a ${mib} MiB WAR in ${war} …\n`);
    await buildSizedWar(war, mib, REVISION);
  }
  await writeFile(join(root, 'stable-revision.txt'), `${REVISION}\r\n`);
  const size = (await stat(war)).size;
  const server = await startServer(root, USER, PASSWORD, bytesPerSecond);
  const layout = await makeServerLayout({ revision: 6880 });
  const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD });
  const caFile = join(layout.root, 'etc/ca.pem');
  const curlConfig = join(layout.root, 'etc/curl.conf');
  const credentials = join(layout.root, 'etc/credentials');
  // the password goes into files, not into curl's or the reference client's argv
  await writeFile(curlConfig, `user = "${USER}:${PASSWORD}"\n`, { mode: 0o600 });
  await writeFile(credentials, `${USER}:${PASSWORD}\n`, { mode: 0o600 });
  const curlOut = join(layout.root, 'curl.war');
  const warUrl = `${server.url}letto-stable.war`;
  const env = { ...process.env, LETTO_UPDATE_CONFIG: config };
  const letto: Sample[] = [];
  const curl: Sample[] = [];
  const floorSamples = new Map<string, Sample[]>(FLOORS.map((f) => [f.mode, []]));
  let sha256: string | null = null;
  const clearStaging = async () => {
    for (const name of await readdir(layout.staging)) await rm(join(layout.staging, name), { force: true, recursive: true });
    await rm(curlOut, { force: true });
  };
  const runLetto = async () => {
    await clearStaging();
    letto.push(await measure(process.execPath, [cli, '--quiet', 'download'], env));
    const staged = await readdir(layout.staging);
    if (!staged.includes(`letto-${REVISION}.war`)) throw new Error(`letto-update left ${staged.join(', ')} in staging`);
  };
  const runCurl = async () => {
    await clearStaging();
    curl.push(await measure('curl', ['-sS', '--fail', '--cacert', caFile, '--config', curlConfig, '-o', curlOut, warUrl], process.env));
    if ((await stat(curlOut)).size !== size) throw new Error('curl fetched a wrong length');
  };
  const runFloor = (mode: (typeof FLOORS)[number]['mode']) => async () => {
    await clearStaging();
    const target = mode === 'hash-file' ? war : warUrl;
    const sample = await measure(process.execPath, [FLOOR_CLIENT, mode, target, caFile, credentials, curlOut], process.env);
    floorSamples.get(mode)!.push(sample);
    // a reference that computes something else would prove nothing: its SHA-256 must be the WAR's
    if (mode !== 'receive') {
      const hex = sample.output.trim();
      sha256 ??= hex;
      if (hex !== sha256) throw new Error(`reference client ${mode} computed SHA-256 ${hex}, another run ${sha256}`);
    }
    if (mode !== 'receive' && mode !== 'hash-file' && (await stat(curlOut)).size !== size) throw new Error(`reference client ${mode} wrote a wrong length`);
  };
  const round = [runLetto, runCurl, ...(floors ? FLOORS.map((f) => runFloor(f.mode)) : [])];
  try {
    await runLetto(); // warm-up (page cache, TLS session, JIT of the server), not counted
    letto.length = 0;
    for (let i = 0; i < runs; i++) {
      // each round starts with another client, so that none always runs right after the same one
      for (let k = 0; k < round.length; k++) await round[(i + k) % round.length]!();
      process.stderr.write(`  ${mib} MiB run ${i + 1}/${runs}: letto-update ${letto.at(-1)!.seconds.toFixed(2)} s, curl ${curl.at(-1)!.seconds.toFixed(2)} s, load ${loadavg()[0]!.toFixed(2)}\n`);
    }
  } finally {
    await server.close();
    await layout.cleanup();
  }
  const c = median(curl.map((s) => s.seconds));
  const cpu = (samples: Sample[]) => (HAVE_TIME ? `${median(samples.map((s) => s.cpuSeconds ?? 0)).toFixed(2)} s` : '?');
  const peak = (samples: Sample[]) => `${Math.max(...samples.map((s) => s.peakRssMiB ?? 0)).toFixed(0)} MiB`;
  const rate = (s: number) => (size / 1024 / 1024 / s).toFixed(0);
  const sizeMiB = `${(size / 1024 / 1024).toFixed(0)} MiB`;
  const l = median(letto.map((s) => s.seconds));
  const row = `| ${sizeMiB} | ${runs} | ${l.toFixed(2)} s (${rate(l)} MiB/s) | ${c.toFixed(2)} s (${rate(c)} MiB/s) | ${(l / c).toFixed(2)}× | ${peak(letto)} | ${cpu(letto)} / ${cpu(curl)} | ${letto.map((s) => s.seconds.toFixed(2)).join(' ')} / ${curl.map((s) => s.seconds.toFixed(2)).join(' ')} |`;
  const floorRows = !floors
    ? []
    : FLOORS.map(({ mode, label }) => {
        const samples = floorSamples.get(mode)!;
        const f = median(samples.map((s) => s.seconds));
        return `| ${sizeMiB} | ${label} | ${f.toFixed(2)} s | ${(f / c).toFixed(2)}× | ${peak(samples)} | ${cpu(samples)} |`;
      });
  return { row, floorRows };
}

const sizes = arg('sizes', '256,1024').split(',').map(Number);
const runs = Number(arg('runs', '5'));
const cache = arg('cache', join(tmpdir(), 'letto-bench'));
const lineMbit = Number(arg('line', '0'));
const cli = arg('cli', CLI_BIN);
const floors = !process.argv.includes('--no-floor');
const FLOOR_CLIENT = new URL('./floor-client.mjs', import.meta.url).pathname;
const bytesPerSecond = lineMbit > 0 ? (lineMbit * 1e6) / 8 : null;
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
  `letto-update: ${cli}`,
  `server: TLS + Basic auth on 127.0.0.1, own process, ${bytesPerSecond ? `limited to ${lineMbit} Mbit/s (${(bytesPerSecond / 2 ** 20).toFixed(1)} MiB/s)` : 'unthrottled'}`,
  '',
  '| WAR | runs | letto-update download (median) | curl (median) | ratio | letto-update peak RSS | CPU time (median, letto / curl) | all runs (letto / curl, s) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
];
const floorLines = [
  '',
  'Reference clients in the same run (bench/floor-client.mjs): what any Node.js program needs at least on this machine.',
  '',
  '| WAR | reference client | median | against curl | peak RSS | CPU time (median) |',
  '| --- | --- | --- | --- | --- | --- |',
];
if (!process.argv.includes('--no-startup')) {
  const exe = arg('exe', packagedExecutable(REPO_ROOT) ?? '');
  const clis: CliUnderTest[] = [{ label: '`node bin/letto-update.js`', command: process.execPath, args: [cli] }];
  if (exe) clis.push({ label: '`build/letto-update` (executable)', command: exe, args: [] });
  // `--before PATH`: another build's bin/letto-update.js (e.g. the commit before a change), in the same rounds
  const before = arg('before', '');
  if (before) clis.push({ label: `\`${before}\` (before)`, command: process.execPath, args: [before] });
  else process.stderr.write('no executable (build/letto-update): run `npm run package` first to measure it too\n');
  console.log([
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}${exe ? `, executable ${exe}` : ''}, ${curlVersion}`,
    `load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    '',
    ...(await benchStartup(clis, Number(arg('startup-runs', '10')))),
    '',
  ].join('\n'));
  if (process.argv.includes('--startup')) process.exit(0);
}
for (const mib of sizes) {
  const result = await benchSize(mib, runs, cache, bytesPerSecond, floors);
  lines.push(result.row);
  floorLines.push(...result.floorRows);
}
if (floors) lines.push(...floorLines);
lines.push('', `load average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(lines.join('\n'));
