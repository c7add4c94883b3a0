/**
 * `letto-update metrics` and `[metrics] textfile` with real parts: the built CLI against the loopback
 * download server and a TomEE stand-in (fake scripts, real files, a health page that fails revision
 * 6890), `promtool check metrics` on the output of every state, and a real node_exporter (textfile
 * collector) scraped every second by a real Prometheus: after an update, an update rolled back, a
 * failed update and a rollback, PromQL over Prometheus' HTTP API gives the revision, result and times.
 */
import { readFile, stat } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunRecord } from '../../src/store/state.js';
import { type FakeHealth, makeServerLayout, runCli, type ServerLayout, startFakeHealth, writeConfig } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';
import { describeWithPrometheus, eventually, promtool, startPrometheus, type PrometheusStack } from '../support/prometheus.js';

const USER = 'letto';
const PASSWORD = 'geheim';

let root: string;
let server: DownloadServer;
let health: FakeHealth;
let layout: ServerLayout;
let config: string;
let stack: PrometheusStack;
let textfile: string;

describeWithPrometheus('metrics: promtool, node_exporter and Prometheus (real)', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'letto-metrics-'));
    await populateDownloadRoot(root, { stable: 6886, daily: 6890, archive: [6870] });
    server = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });
    layout = await makeServerLayout({ revision: 6880 });
    health = await startFakeHealth({ layout: () => layout, unhealthy: new Set([6890]) });
    stack = await startPrometheus();
    textfile = join(stack.textfileDir, 'letto_update.prom');
    config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, {
      password: PASSWORD,
      tomee: { health_url: health.url, health_timeout: 1 },
      extra: `[metrics]\ntextfile = "${textfile}"`,
    });
  }, 60_000);

  afterAll(async () => {
    await stack?.close();
    await server?.close();
    await health?.close();
    await layout?.cleanup();
    if (root) await rm(root, { recursive: true, force: true });
  });

  /** `metrics` (with `--probe` when asked) through the CLI, checked by promtool; returns the text. */
  async function checkedMetrics(probe = false): Promise<string> {
    const r = await runCli(['--config', config, 'metrics', ...(probe ? ['--probe'] : [])]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const check = await promtool(['check', 'metrics'], r.stdout);
    expect(check.output).toBe('');
    expect(check.code).toBe(0);
    return r.stdout;
  }

  /** The textfile: promtool accepts it, node_exporter can read it (0644), no password in it. */
  async function checkedTextfile(): Promise<string> {
    const text = await readFile(textfile, 'utf8');
    expect((await stat(textfile)).mode & 0o777).toBe(0o644);
    expect(text).not.toContain(PASSWORD);
    const check = await promtool(['check', 'metrics'], text);
    expect(check.output).toBe('');
    expect(check.code).toBe(0);
    return text;
  }

  async function lastRun(): Promise<RunRecord> {
    const lines = (await readFile(join(layout.state, 'runs.jsonl'), 'utf8')).trim().split('\n');
    return JSON.parse(lines.at(-1)!) as RunRecord;
  }

  const value = (samples: Array<{ value: number }>) => (samples.length === 1 ? samples[0]!.value : NaN);

  it('a fresh install: metrics without a run, and with --probe', async () => {
    const text = await checkedMetrics();
    expect(text).toMatch(/^letto_update_installed_revision 6880$/m);
    expect(text).not.toMatch(/letto_update_last_run_result/);
    expect(text).not.toMatch(/letto_update_up/);
    await expect(stat(textfile)).rejects.toThrow(); // no run yet: no textfile
    expect(await checkedMetrics(true)).toMatch(/^letto_update_up 1$/m);
  });

  it('after an update: the textfile, and Prometheus has the revision, result and times', async () => {
    const r = await runCli(['--config', config, 'update', '--yes', '--cron']);
    expect(r.exitCode).toBe(0);
    const text = await checkedTextfile();
    expect(text).toMatch(/^letto_update_installed_revision 6886$/m);
    expect(await checkedMetrics(true)).toMatch(/^letto_update_up 1$/m);
    const run = await lastRun();
    expect(run).toMatchObject({ result: 'updated', available: 6886, channel: 'stable', cron: true });
    expect(run.downtimeSeconds).toBeGreaterThanOrEqual(0);
    await eventually(stack, 'letto_update_installed_revision', (s) => value(s) === 6886);
    await eventually(stack, 'letto_update_last_run_result == 1', (s) => s.length === 1 && s[0]!.metric.result === 'updated');
    expect(value(await stack.query('letto_update_last_run_end_timestamp_seconds'))).toBe(Date.parse(run.time) / 1000);
    expect(value(await stack.query('letto_update_last_nightly_run_timestamp_seconds'))).toBe(Date.parse(run.time) / 1000);
    expect(value(await stack.query('letto_update_last_update_timestamp_seconds'))).toBe(Date.parse(run.time) / 1000);
    expect(value(await stack.query('letto_update_last_run_start_timestamp_seconds'))).toBeCloseTo(Date.parse(run.time) / 1000 - run.durationSeconds, 3);
    expect(value(await stack.query('letto_update_revisions_behind'))).toBe(0);
    expect(value(await stack.query('letto_update_last_download_size_bytes'))).toBe(run.download!.total);
    expect(value(await stack.query('letto_update_last_update_downtime_seconds'))).toBe(run.downtimeSeconds);
  }, 60_000);

  it('after an update that was rolled back: result rolled-back, failed revision, the old revision still installed', async () => {
    const r = await runCli(['--config', config, 'update', '--yes', '--channel', 'daily']);
    expect(r.exitCode).toBe(3);
    await checkedTextfile();
    await checkedMetrics();
    const run = await lastRun();
    expect(run.result).toBe('rolled-back');
    await eventually(stack, 'letto_update_last_run_result == 1', (s) => s.length === 1 && s[0]!.metric.result === 'rolled-back');
    expect(value(await stack.query('letto_update_failed_revision'))).toBe(6890);
    expect(value(await stack.query('letto_update_installed_revision'))).toBe(6886);
    expect(value(await stack.query('letto_update_last_run_end_timestamp_seconds'))).toBe(Date.parse(run.time) / 1000);
    expect(value(await stack.query('letto_update_last_update_downtime_seconds'))).toBe(run.downtimeSeconds);
    expect(value(await stack.query('letto_update_runs_total{result="rolled-back"}'))).toBe(1);
  }, 60_000);

  it('after a failed update (revision not in the archive): result failed, nothing else changed', async () => {
    const r = await runCli(['--config', config, 'update', '--yes', '--revision', '6999']);
    expect(r.exitCode).toBe(1);
    await checkedTextfile();
    const run = await lastRun();
    expect(run.result).toBe('failed');
    await eventually(stack, 'letto_update_last_run_result == 1', (s) => s.length === 1 && s[0]!.metric.result === 'failed');
    expect(value(await stack.query('letto_update_last_run_end_timestamp_seconds'))).toBe(Date.parse(run.time) / 1000);
    expect(value(await stack.query('letto_update_installed_revision'))).toBe(6886);
    expect(value(await stack.query('letto_update_failed_revision'))).toBe(6890);
  }, 60_000);

  it('after a rollback: command rollback, result updated, revision 6880, revisions behind', async () => {
    const r = await runCli(['--config', config, 'rollback', '--yes']);
    expect(r.exitCode).toBe(0);
    await checkedTextfile();
    const run = await lastRun();
    await eventually(stack, 'letto_update_installed_revision', (s) => value(s) === 6880);
    const results = await stack.query('letto_update_last_run_result == 1');
    expect(results.map((s) => [s.metric.command, s.metric.result])).toEqual([['rollback', 'updated']]);
    expect(value(await stack.query('letto_update_last_run_end_timestamp_seconds'))).toBe(Date.parse(run.time) / 1000);
    // the channel revision is the one the last update read (6999 was asked for; the channel offered 6886)
    expect(value(await stack.query('letto_update_revisions_behind'))).toBe(6);
  }, 60_000);
  it('after watchdog checks and a restart: the textfile follows each changed outcome; Prometheus counts the restart', async () => {
    await rm(layout.runningFlag); // TomEE died
    const first = await runCli(['--config', config, 'watchdog', '--once']);
    expect(first.exitCode).toBe(0);
    expect(await checkedTextfile()).toMatch(/^letto_update_watchdog_last_action\{action="counting"\} 1$/m);
    await eventually(stack, 'letto_update_watchdog_last_action == 1', (s) => s.length === 1 && s[0]!.metric.action === 'counting');
    for (let i = 0; i < 2; i++) expect((await runCli(['--config', config, 'watchdog', '--once'])).exitCode).toBe(0);
    expect(await checkedTextfile()).toMatch(/^letto_update_watchdog_restarts_total\{result="restarted"\} 1$/m);
    await eventually(stack, 'letto_update_watchdog_restarts_total{result="restarted"}', (s) => value(s) === 1);
    await eventually(stack, 'letto_update_watchdog_last_action == 1', (s) => s.length === 1 && s[0]!.metric.action === 'restarted');
    // the restart is no update: the last run stays the rollback
    expect((await stack.query('letto_update_last_run_result == 1')).map((s) => s.metric.command)).toEqual(['rollback']);
  }, 60_000);

  it('a textfile that cannot be written is a warning; the run and its exit code are not affected', async () => {
    const r = await runCli(['--config', config, 'update', '--yes'], { env: { LETTO_UPDATE_METRICS_TEXTFILE: join(root, 'missing-folder', 'letto_update.prom') } });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/warning: Could not write the metrics textfile .*missing-folder\/letto_update\.prom: .*ENOENT.*the run itself is not affected/);
    expect((await lastRun()).result).toBe('updated');
  }, 60_000);
});
