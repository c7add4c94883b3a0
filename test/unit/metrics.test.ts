/**
 * The metrics' shape without Prometheus (promtool checks the text in test/integration/metrics*.test.ts):
 * escaping, what a fresh install leaves out, the last run, the channel revision taken from the runs,
 * and the [metrics] textfile key.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { escapeLabelValue, renderFamilies } from '../../src/report/exposition.js';
import { metricFamilies, type MetricsInput } from '../../src/report/metrics.js';

const base: MetricsInput = {
  kind: 'tomee',
  channel: 'stable',
  version: '0.1.0',
  installed: { revision: 6880, source: 'war' },
  runs: [],
  failedRevision: null,
  watchdog: { failures: 0, lastCheck: null, lastRestart: null, lastAction: null },
  watchdogPaused: false,
  now: new Date('2026-12-07T03:30:00Z'),
};

const text = (input: MetricsInput) => renderFamilies(metricFamilies(input));

describe('metrics', () => {
  it('escapes label values as the exposition format says', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });

  it('a fresh install: installed revision, no run, no channel revision, failed revision 0, no probe', () => {
    const out = text(base);
    expect(out).toMatch(/^letto_update_installed_revision 6880$/m);
    expect(out).toMatch(/^letto_update_failed_revision 0$/m);
    expect(out).toMatch(/^letto_update_info\{kind="tomee",channel="stable",version="0.1.0"\} 1$/m);
    for (const absent of ['letto_update_last_run_result', 'letto_update_available_revision', 'letto_update_revisions_behind', 'letto_update_up', 'letto_update_service_revision', 'letto_update_watchdog_last_action']) {
      expect(out).not.toContain(`${absent} `);
      expect(out).not.toContain(`${absent}{`);
    }
  });

  it('the last run: start = end − duration, its result 1 and the others 0; the channel revision from the last update of this channel; watchdog runs are not the last run', () => {
    const out = text({
      ...base,
      runs: [
        { time: '2026-12-06T03:20:00Z', command: 'update', from: 6870, to: 6880, result: 'updated', durationSeconds: 80, message: '', channel: 'stable', available: 6886 },
        { time: '2026-12-06T04:00:00Z', command: 'update', from: 6880, to: 6880, result: 'current', durationSeconds: 1, message: '', channel: 'daily', available: 6899 },
        { time: '2026-12-07T03:20:00Z', command: 'update', from: 6880, to: 6886, result: 'failed', durationSeconds: 12.5, message: '', channel: 'stable', cron: true },
        { time: '2026-12-07T03:25:00Z', command: 'watchdog', from: 6880, to: 6880, result: 'restart-failed', durationSeconds: 300, message: '' },
      ],
    });
    const end = Date.parse('2026-12-07T03:20:00Z') / 1000;
    expect(out).toMatch(new RegExp(`^letto_update_last_run_end_timestamp_seconds ${end}$`, 'm'));
    expect(out).toMatch(new RegExp(`^letto_update_last_run_start_timestamp_seconds ${end - 12.5}$`, 'm'));
    expect(out).toMatch(/^letto_update_last_run_result\{command="update",result="failed"\} 1$/m);
    expect(out).toMatch(/^letto_update_last_run_result\{command="update",result="updated"\} 0$/m);
    expect(out).toMatch(/^letto_update_available_revision\{channel="stable"\} 6886$/m);
    expect(out).toMatch(/^letto_update_revisions_behind 6$/m);
    expect(out).toMatch(new RegExp(`^letto_update_last_nightly_run_timestamp_seconds ${end}$`, 'm'));
    expect(out).toMatch(/^letto_update_watchdog_restarts_total\{result="restart-failed"\} 1$/m);
    expect(out).toMatch(/^letto_update_runs_total\{command="update",result="failed"\} 1$/m);
  });

  it('[metrics] textfile: empty by default; a relative path or one not ending in .prom is a config error naming the key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'letto-metrics-config-'));
    try {
      const path = join(dir, 'config.toml');
      for (const textfile of ['letto_update.txt', 'node-exporter/letto_update.prom', '/var/lib/prometheus/node-exporter/letto_update.txt']) {
        await writeFile(path, `[metrics]\ntextfile = "${textfile}"\n`);
        await expect(loadConfig(path, {}), textfile).rejects.toThrow(/metrics\.textfile.*\.prom/);
      }
      await writeFile(path, '[metrics]\ntextfile = "/var/lib/prometheus/node-exporter/letto_update.prom"\n');
      expect((await loadConfig(path, {})).config.metrics.textfile).toBe('/var/lib/prometheus/node-exporter/letto_update.prom');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
