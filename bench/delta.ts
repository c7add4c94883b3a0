/**
 * `npm run bench -- --delta`: the delta download against curl fetching the whole file. Two consecutive
 * LeTTo-like WARs (fixtures/letto-like-wars.ts: the JDK's `jar` tool, real jars from Debian's Java
 * packages, classes compiled by javac; the second build with every class changed and one jar changed):
 * the older one is installed, the newer one is on the server (TLS + Basic auth, bench/serve.ts in a
 * process of its own). The installed WAR's SHA-256 is in runs.jsonl, as after the update that installed
 * it (a row of each scenario without that record shows the cost of inflating every reused entry instead).
 * letto-update `download` (the built CLI, all verification included) and curl
 * alternate, several runs each, in two scenarios:
 * - loopback: client and server on 127.0.0.1, unthrottled;
 * - a 100 Mbit/s line: the clients run in a network namespace joined to the server by a veth pair whose
 *   server side is shaped with `tc` (tbf 100 Mbit/s; plus netem 5 ms each way, 10 ms round trip, where
 *   the kernel has sch_netem). Bytes on the wire are the veth's counters (IP, TCP and TLS included).
 *   Needs root, `ip` and `tc`; skipped with a note otherwise.
 *
 * Options: `--runs 3`, `--cache DIR` (the WARs are kept there; default `$TMPDIR/letto-bench`),
 * `--line MBIT` (default 100). Prints a Markdown table for docs/performance.md.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLettoLikeWars } from '../fixtures/letto-like-wars.js';
import { guessDataStarts } from '../src/war/delta/copy-entries.js';
import { coalesce, subtract } from '../src/war/delta/intervals.js';
import { matchEntries } from '../src/war/delta/local-sources.js';
import { directoryOfFile } from '../src/war/delta/zip-directory.js';
import { startApache } from '../test/support/apache.js';
import { CLI_BIN, makeServerLayout, writeConfig } from '../test/support/cli.js';
import { median, startServer } from './measure.js';

const USER = 'letto';
const PASSWORD = 'bench-secret';
const NS = 'lu-delta13';
const HOST_IF = 'lu13a';
const NS_IF = 'lu13b';
const SERVER_IP = '10.213.0.1';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const runs = Number(arg('runs', '3'));
const cache = arg('cache', join(tmpdir(), 'letto-bench'));
const lineMbit = Number(arg('line', '100'));
let lineNote = '';

interface Sample {
  seconds: number;
  cpuSeconds: number;
  /** Bytes the server side of the line sent (veth counter); null on loopback. */
  wire: number | null;
  output: string;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

/** Creates the namespace and the shaped line; false (with the reason) when that is not possible here. */
function setUpLine(): string | null {
  try {
    tearDownLine();
    sh('ip', ['netns', 'add', NS]);
    sh('ip', ['link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF]);
    sh('ip', ['link', 'set', NS_IF, 'netns', NS]);
    sh('ip', ['addr', 'add', `${SERVER_IP}/24`, 'dev', HOST_IF]);
    sh('ip', ['link', 'set', HOST_IF, 'up']);
    sh('ip', ['netns', 'exec', NS, 'ip', 'addr', 'add', '10.213.0.2/24', 'dev', NS_IF]);
    sh('ip', ['netns', 'exec', NS, 'ip', 'link', 'set', NS_IF, 'up']);
    sh('ip', ['netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up']);
    // server → client: 5 ms delay (netem, when the kernel has it), then 100 Mbit/s (tbf); client → server: 5 ms delay
    try {
      sh('tc', ['qdisc', 'add', 'dev', HOST_IF, 'root', 'handle', '1:', 'netem', 'delay', '5ms', 'limit', '10000']);
      sh('tc', ['qdisc', 'add', 'dev', HOST_IF, 'parent', '1:', 'handle', '2:', 'tbf', 'rate', `${lineMbit}mbit`, 'burst', '64kb', 'latency', '100ms']);
      sh('ip', ['netns', 'exec', NS, 'tc', 'qdisc', 'add', 'dev', NS_IF, 'root', 'netem', 'delay', '5ms', 'limit', '10000']);
      lineNote = `${lineMbit} Mbit/s, 10 ms RTT (tc tbf + netem)`;
    } catch {
      try {
        execFileSync('tc', ['qdisc', 'del', 'dev', HOST_IF, 'root'], { stdio: 'ignore' });
      } catch {
        // netem was not added
      }
      sh('tc', ['qdisc', 'add', 'dev', HOST_IF, 'root', 'tbf', 'rate', `${lineMbit}mbit`, 'burst', '64kb', 'latency', '100ms']);
      lineNote = `${lineMbit} Mbit/s (tc tbf; no added delay: this kernel has no sch_netem)`;
    }
    return null;
  } catch (error) {
    tearDownLine();
    return error instanceof Error ? error.message.split('\n')[0]! : String(error);
  }
}

function tearDownLine(): void {
  try {
    execFileSync('ip', ['link', 'del', HOST_IF], { stdio: 'ignore' });
  } catch {
    // not there
  }
  try {
    execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  } catch {
    // not there
  }
}

function txBytes(): number {
  return Number(sh('cat', [`/sys/class/net/${HOST_IF}/statistics/tx_bytes`]).trim());
}

/** Runs a command (in the namespace when `inNs`), timing wall clock and CPU (user + system, /usr/bin/time). */
async function measure(command: string, args: string[], env: NodeJS.ProcessEnv, inNs: boolean): Promise<Sample> {
  const timeFile = join(tmpdir(), `letto-bench-delta-time-${process.pid}`);
  const timed = ['/usr/bin/time', '-f', '%U %S', '-o', timeFile, command, ...args];
  const argv = inNs ? ['ip', 'netns', 'exec', NS, ...timed] : timed;
  const before = inNs ? txBytes() : 0;
  const started = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`);
  const [user, system] = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
  return { seconds, cpuSeconds: user! + system!, wire: inNs ? txBytes() - before : null, output };
}

const MiB = 1024 * 1024;
const fmt = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** One scenario: `runs` rounds of letto-update (delta) and curl (whole file), alternating. */
async function scenario(name: string, oldWar: string, root: string, size: number, inNs: boolean, recorded = true): Promise<string> {
  const server = await startServer(root, USER, PASSWORD, null, inNs ? SERVER_IP : '127.0.0.1');
  const port = Number(new URL(server.url).port);
  const layout = await makeServerLayout({ revision: 6880 });
  if (recorded) {
    // as after the update that installed it: runs.jsonl holds the installed WAR's SHA-256 (its entries are then copied without inflating)
    await mkdir(layout.state, { recursive: true });
    const sha256 = createHash('sha256').update(await readFile(oldWar)).digest('hex');
    await writeFile(join(layout.state, 'runs.jsonl'), `${JSON.stringify({ time: new Date().toISOString(), command: 'update', from: 6884, to: 6885, result: 'updated', durationSeconds: 60, message: 'bench', sha256 })}\n`);
  }
  // in the namespace, localhost is the server's address (/etc/netns/<ns>/hosts), so its certificate fits
  const url = `https://localhost:${port}/download/letto/`;
  const config = await writeConfig(layout, { url, caPem: server.caPem, user: USER }, { password: PASSWORD });
  const caFile = join(layout.root, 'etc/ca.pem');
  const curlConfig = join(layout.root, 'etc/curl.conf');
  await writeFile(curlConfig, `user = "${USER}:${PASSWORD}"\n`, { mode: 0o600 });
  const curlOut = join(layout.root, 'curl.war');
  const env = { ...process.env, LETTO_UPDATE_CONFIG: config };
  const letto: Sample[] = [];
  const curl: Sample[] = [];
  const fetched: number[] = [];
  const reset = async () => {
    for (const n of await readdir(layout.staging)) await rm(join(layout.staging, n), { force: true, recursive: true });
    await rm(curlOut, { force: true });
    await copyFile(oldWar, layout.war);
  };
  const runLetto = async () => {
    await reset();
    const sample = await measure(process.execPath, [CLI_BIN, '--json', 'download'], env, inNs);
    const json = JSON.parse(sample.output.slice(sample.output.indexOf('{'))) as { download: { mode: string; fetched: number; text: string } };
    if (json.download.mode !== 'delta') throw new Error(`not a delta download: ${sample.output}`);
    fetched.push(json.download.fetched);
    letto.push(sample);
  };
  const runCurl = async () => {
    await reset();
    // curl takes localhost to be 127.0.0.1 whatever /etc/hosts says
    const resolve = inNs ? ['--resolve', `localhost:${port}:${SERVER_IP}`] : [];
    curl.push(await measure('curl', ['-sS', '--fail', ...resolve, '--cacert', caFile, '--config', curlConfig, '-o', curlOut, `${url}letto-stable.war`], process.env, inNs));
    if ((await stat(curlOut)).size !== size) throw new Error('curl fetched a wrong length');
  };
  try {
    await runLetto(); // warm-up (page cache, TLS, the server's JIT), not counted
    letto.length = 0;
    fetched.length = 0;
    for (let i = 0; i < runs; i++) {
      for (const run of i % 2 ? [runCurl, runLetto] : [runLetto, runCurl]) await run();
      process.stderr.write(`  ${name} run ${i + 1}/${runs}: letto-update ${letto.at(-1)!.seconds.toFixed(2)} s, curl ${curl.at(-1)!.seconds.toFixed(2)} s\n`);
    }
  } finally {
    await server.close();
    await layout.cleanup();
  }
  const l = median(letto.map((s) => s.seconds));
  const c = median(curl.map((s) => s.seconds));
  const body = median(fetched);
  const wire = (samples: Sample[]) => (samples[0]?.wire !== null ? fmt(median(samples.map((s) => s.wire!))) : '–');
  return `| ${name} | ${fmt(body)} (${((body / size) * 100).toFixed(1)} %) | ${wire(letto)} / ${wire(curl)} | ${l.toFixed(2)} s | ${c.toFixed(2)} s | ${(l / c).toFixed(2)}× | ${median(letto.map((s) => s.cpuSeconds)).toFixed(2)} s / ${median(curl.map((s) => s.cpuSeconds)).toFixed(2)} s | ${letto.map((s) => s.seconds.toFixed(2)).join(' ')} / ${curl.map((s) => s.seconds.toFixed(2)).join(' ')} |`;
}

/**
 * The byte ranges the delta download asks for (the same plan: src/delta), without the directory's tail.
 * Units: bytes, `end` exclusive.
 */
async function plannedRanges(oldWar: string, newWar: string): Promise<Array<{ start: number; end: number }>> {
  const remote = (await directoryOfFile(newWar)).entries;
  const local = { path: oldWar, revision: 6885, entries: (await directoryOfFile(oldWar)).entries };
  const matches = matchEntries(remote, [local]);
  const starts = await guessDataStarts(remote, matches);
  const reused = remote.flatMap((e, i) => (matches[i] ? [{ start: starts[i]!, end: starts[i]! + e.compressedSize }] : []));
  const end = (await stat(newWar)).size - 512 * 1024;
  return coalesce(subtract([{ start: 0, end }], reused), 16 * 1024, 32 * MiB);
}

/**
 * How to ask for many ranges, measured with curl against Apache on the shaped line: one multipart
 * request per 100 ranges (Apache answers more than MaxRanges 200 with the whole file, and a Range header
 * of some 300 ranges passes its 8 KiB header limit), single ranges one after another on one kept-alive
 * connection, and single ranges four at a time (what letto-update falls back to when a server does not
 * answer several ranges in one multipart answer).
 */
async function rangeStrategies(ranges: Array<{ start: number; end: number }>, root: string, inNs: boolean): Promise<string[]> {
  const apache = await startApache({ root, user: USER, password: PASSWORD, host: inNs ? SERVER_IP : '127.0.0.1' });
  const dir = await mkdtemp(join(tmpdir(), 'letto-bench-ranges-'));
  try {
    const ca = join(dir, 'ca.pem');
    await writeFile(ca, apache.caPem);
    const url = `https://localhost:${apache.port}/download/letto/letto-stable.war`;
    const block = (range: string) => `url = "${url}"\nresolve = "localhost:${apache.port}:${inNs ? SERVER_IP : '127.0.0.1'}"\nuser = "${USER}:${PASSWORD}"\ncacert = "${ca}"\nrange = "${range}"\noutput = "/dev/null"\nsilent\nshow-error\nfail\n`;
    const spec = (r: { start: number; end: number }) => `${r.start}-${r.end - 1}`;
    const batches: string[] = [];
    for (let i = 0; i < ranges.length; i += 100) batches.push(ranges.slice(i, i + 100).map(spec).join(','));
    const strategies: Array<[string, string, string[]]> = [
      [`multipart, ${batches.length} requests of ≤100 ranges, one connection (as letto-update, which sends them on up to 4)`, batches.map(block).join('next\n'), []],
      [`${ranges.length} single ranges, one after another, one connection`, ranges.map((r) => block(spec(r))).join('next\n'), []],
      [`${ranges.length} single ranges, 4 at a time (letto-update's fallback)`, ranges.map((r) => block(spec(r))).join('next\n'), ['--parallel', '--parallel-max', '4']],
    ];
    const rows: string[] = [];
    for (const [label, config, extra] of strategies) {
      const file = join(dir, 'curl.conf');
      await writeFile(file, config, { mode: 0o600 });
      const samples: Sample[] = [];
      for (let i = 0; i < runs; i++) samples.push(await measure('curl', [...extra, '--config', file], process.env, inNs));
      const wire = samples[0]?.wire !== null ? fmt(median(samples.map((s) => s.wire!))) : '–';
      rows.push(`| ${label} | ${median(samples.map((s) => s.seconds)).toFixed(2)} s | ${wire} |`);
    }
    return rows;
  } finally {
    await apache.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await mkdir(cache, { recursive: true });
process.stderr.write(`building the two LeTTo-like WARs in ${join(cache, 'delta')} (jar, javac) …\n`);
const wars = await buildLettoLikeWars(join(cache, 'delta'));
const root = await mkdtemp(join(tmpdir(), 'letto-bench-delta-'));
await copyFile(wars.now, join(root, 'letto-stable.war'));
await writeFile(join(root, 'stable-revision.txt'), '6886\r\n');
const size = (await stat(wars.now)).size;
const lines = [
  `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}; load average at start ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
  `WARs: ${fmt((await stat(wars.old)).size)} → ${fmt(size)}, ${wars.jars} real jars; changed: every class (javac) and ${wars.changedJar.split('/').at(-1)}`,
  '',
  '| scenario | letto-update fetched (body, share of the WAR) | on the wire: letto-update / curl | letto-update (median) | curl, whole file (median) | ratio | CPU letto / curl | all runs (letto / curl, s) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
];
const strategyLines: string[] = [];
try {
  lines.push(await scenario('loopback', wars.old, root, size, false));
  lines.push(await scenario('loopback, installed WAR not in runs.jsonl (every reused entry inflated for its CRC-32)', wars.old, root, size, false, false));
  const why = setUpLine();
  if (why) {
    lines.push(`| ${lineMbit} Mbit/s | skipped: cannot build the shaped line (${why}); needs root, ip and tc | | | | | | |`);
  } else {
    await mkdir(`/etc/netns/${NS}`, { recursive: true });
    await writeFile(`/etc/netns/${NS}/hosts`, `${SERVER_IP} localhost\n`);
    try {
      lines.push(await scenario(lineNote, wars.old, root, size, true));
      lines.push(await scenario(`${lineNote}, installed WAR not in runs.jsonl`, wars.old, root, size, true, false));
      const ranges = await plannedRanges(wars.old, wars.now);
      strategyLines.push(
        '',
        `Asking for the ${ranges.length} ranges of this update (${fmt(ranges.reduce((sum, r) => sum + r.end - r.start, 0))}, the directory's tail not included) from Apache httpd on the same ${lineMbit} Mbit/s line, with curl (median of ${runs}):`,
        '',
        '| requests | time | on the wire |',
        '| --- | --- | --- |',
        ...(await rangeStrategies(ranges, root, true)),
      );
    } finally {
      tearDownLine();
      await rm(`/etc/netns/${NS}`, { recursive: true, force: true });
    }
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
lines.push(...strategyLines);
lines.push('', `load average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(lines.join('\n'));
if (!existsSync('/usr/bin/time')) console.log('(CPU times need /usr/bin/time)');
