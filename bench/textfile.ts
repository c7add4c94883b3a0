/**
 * `npm run bench -- --textfile`: what `[metrics] textfile` adds to `update` (issue #22). The same
 * server layout runs `update --cron` (the nightly run; the stable revision is installed, so the run
 * finds it current: the shortest update there is, where the textfile's share would show most)
 * alternately without and with `[metrics] textfile`, in the same rounds; runs.jsonl holds a year of
 * nightly runs, which the textfile is computed from. Prints the medians and their difference as Markdown.
 * Options: `--textfile-runs N` (default 20).
 */
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI_BIN, makeServerLayout, startFakeHealth, writeConfig } from '../test/support/cli.js';
import { populateDownloadRoot } from '../test/support/download-server.js';
import { measure, median, startServer, type Sample } from './measure.js';
import { nightlyRuns } from './startup.js';

const runs = Number(process.argv[process.argv.indexOf('--textfile-runs') + 1]) || 20;
const user = 'letto';
const password = 'bench-secret';
const root = await mkdtemp(join(tmpdir(), 'letto-bench-textfile-'));
await populateDownloadRoot(root, { stable: 6886, daily: 6887 });
const server = await startServer(root, user, password);
const layout = await makeServerLayout({ revision: 6886 });
const health = await startFakeHealth({ layout: () => layout });
try {
  const textfile = join(root, 'node-exporter', 'letto_update.prom');
  await mkdir(join(root, 'node-exporter'));
  await mkdir(layout.state, { recursive: true });
  await writeFile(join(layout.state, 'runs.jsonl'), nightlyRuns(365));
  const base = { url: server.url, caPem: server.caPem, user };
  const tomee = { health_url: health.url };
  const without = await writeConfig(layout, base, { password, tomee });
  const withoutText = await readFile(without, 'utf8');
  const withPath = join(layout.root, 'etc', 'with-textfile.toml');
  await writeFile(withPath, `${withoutText}\n[metrics]\ntextfile = "${textfile}"\n`);
  const args = (config: string) => [CLI_BIN, '--config', config, 'update', '--cron'];
  const samples: Record<'without' | 'with', Sample[]> = { without: [], with: [] };
  await measure(process.execPath, args(without), process.env);
  await measure(process.execPath, args(withPath), process.env);
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const);
    for (const which of order) samples[which].push(await measure(process.execPath, args(which === 'with' ? withPath : without), process.env));
  }
  // the textfile's own cost, in this process: read the install, state, runs.jsonl and watchdog files, render, write beside, rename
  const { openSession } = await import('../src/config/session.js');
  const { writeMetricsTextfile } = await import('../src/report/metrics-textfile.js');
  const session = await openSession({ configPath: withPath, access: 'read', local: true, emit: () => undefined });
  const writes: number[] = [];
  for (let i = 0; i < 50; i++) {
    const started = performance.now();
    await writeMetricsTextfile(session.ctx);
    writes.push((performance.now() - started) / 1000);
  }
  await session.close();
  const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
  const wall = (k: 'without' | 'with') => median(samples[k].map((s) => s.seconds));
  const cpu = (k: 'without' | 'with') => median(samples[k].map((s) => s.cpuSeconds ?? 0));
  const lines = [
    `CPU: ${cpus()[0]?.model ?? '?'} (${cpus().length} cores); ${runs} rounds; runs.jsonl: 365 runs; textfile ${(await stat(textfile)).size} bytes.`,
    '',
    '| `update --cron` (current) | wall (median) | wall (min … max) | CPU user+sys (median) |',
    '| --- | --- | --- | --- |',
    ...(['without', 'with'] as const).map((k) => `| ${k} [metrics] textfile | ${ms(wall(k))} | ${ms(Math.min(...samples[k].map((s) => s.seconds)))} … ${ms(Math.max(...samples[k].map((s) => s.seconds)))} | ${ms(cpu(k))} |`),
    '',
    `Writing the textfile in-process (50 times): median ${(median(writes) * 1000).toFixed(1)} ms, min ${(Math.min(...writes) * 1000).toFixed(1)} ms.`,
    `Difference of the medians: wall ${ms(wall('with') - wall('without'))}, CPU ${ms(cpu('with') - cpu('without'))} (load average at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}).`,
  ];
  console.log(lines.join('\n'));
} finally {
  await health.close();
  await server.close();
  await layout.cleanup();
  await rm(root, { recursive: true, force: true });
}
