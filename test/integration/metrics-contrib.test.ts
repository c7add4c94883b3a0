/**
 * contrib/prometheus (alert rules) and contrib/grafana (dashboard) against the real promtool and against
 * what `letto-update metrics` exports: the rules load (`promtool check rules`), their unit tests pass
 * (`promtool test rules`), and each alert's test fails when that alert's expression is made to never
 * fire (so every alert is proven to fire). The dashboard parses and queries only exported metric names.
 */
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { renderFamilies } from '../../src/report/exposition.js';
import { metricFamilies, type MetricsInput } from '../../src/report/metrics.js';
import { REPO_ROOT } from '../support/cli.js';
import { describeWithPrometheus, promtool } from '../support/prometheus.js';
import { describeWithAnsible } from '../support/ansible.js';
import { loadConfig } from '../../src/config/config.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const RULES = join(REPO_ROOT, 'contrib/prometheus/letto-update-rules.yml');
const RULE_TESTS = join(REPO_ROOT, 'contrib/prometheus/letto-update-rules.test.yml');
const DASHBOARD = join(REPO_ROOT, 'contrib/grafana/letto-update-dashboard.json');

/** Every series `metrics` can export at once: a Docker install with two schools, runs of each kind, a watchdog restart, --probe. */
const FULL_INPUT: MetricsInput = {
  kind: 'docker',
  channel: 'stable',
  version: '0.1.0',
  now: new Date('2026-12-07T03:30:00Z'),
  installed: {
    revision: 6886,
    source: 'images',
    mixed: true,
    services: [
      { name: 'letto/lettoserver', image: 'lettohub/lettoserver:stable', revision: 6886, state: 'running', health: 'healthy' },
      { name: 'letto/letto-service-lti', image: 'lettohub/letto-service-lti:stable', revision: 6886, state: 'running', health: null },
      { name: 'letto-schule2/lettoserver', image: 'lettohub/lettoserver:stable', revision: 6880, state: 'exited', health: 'unhealthy' },
    ],
  },
  runs: [
    { time: '2026-12-06T03:20:00Z', command: 'update', from: 6870, to: 6880, result: 'updated', durationSeconds: 80, message: 'a', channel: 'stable', available: 6880, cron: true, downtimeSeconds: 41.5, download: { mode: 'delta', total: 260_000_000, fetched: 3_000_000, reused: 257_000_000, transferred: 3_000_000, reusedFrom: 6870, text: '' } },
    { time: '2026-12-06T12:00:00Z', command: 'watchdog', from: 6880, to: 6880, result: 'restarted', durationSeconds: 70, message: 'b' },
    { time: '2026-12-07T03:20:00Z', command: 'update', from: 6880, to: 6890, result: 'rolled-back', durationSeconds: 400, message: 'c "quoted" \\ back', channel: 'stable', available: 6890, cron: true, downtimeSeconds: 380 },
  ],
  failedRevision: 6890,
  watchdog: { failures: 0, lastCheck: '2026-12-07T03:29:00Z', lastRestart: '2026-12-06T12:00:00Z', lastAction: 'restart-failed' },
  watchdogPaused: false,
  probe: { up: false, seconds: null },
};

const exported = new Set(metricFamilies(FULL_INPUT).map((f) => f.name));

describeWithPrometheus('contrib: Prometheus alert rules and the Grafana dashboard', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'letto-rules-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('promtool check metrics accepts a Docker install with several schools, a watchdog restart and --probe', async () => {
    const check = await promtool(['check', 'metrics'], renderFamilies(metricFamilies(FULL_INPUT)));
    expect(check.output).toBe('');
    expect(check.code).toBe(0);
    const text = renderFamilies(metricFamilies(FULL_INPUT));
    expect(text).toContain('letto_update_service_revision{project="letto-schule2",service="letto-schule2/lettoserver"} 6880');
    expect(text).toContain('letto_update_service_up{project="letto-schule2",service="letto-schule2/lettoserver"} 0');
    expect(text).toMatch(/^letto_update_services_mixed 1$/m);
    expect(text).toMatch(/^letto_update_up 0$/m);
  });

  it('promtool check rules accepts the rules; promtool test rules passes', async () => {
    const check = await promtool(['check', 'rules', RULES]);
    expect(check.output).toContain('SUCCESS: 7 rules found');
    expect(check.code).toBe(0);
    const test = await promtool(['test', 'rules', RULE_TESTS]);
    expect(test.output).toContain('SUCCESS');
    expect(test.code).toBe(0);
  });

  it('each alert is proven to fire and to stay quiet: its test fails when its expression never fires, and when it fires on every series', async () => {
    const rules = await readFile(RULES, 'utf8');
    const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]!);
    expect(alerts).toEqual(['LettoUpdateFailed', 'LettoRollbackFailed', 'LettoRevisionsBehind', 'LettoDaysBehind', 'LettoNightlyRunMissing', 'LettoNightlyRunNeverRan', 'LettoDownAfterWatchdogRestart']);
    await copyFile(RULE_TESTS, join(dir, 'letto-update-rules.test.yml'));
    for (const alert of alerts) {
      for (const [expr, what] of [['vector(0) > 1', 'never firing'], ['{__name__=~"letto_update_.+"}', 'firing on every series']]) {
        const mutated = rules.replace(new RegExp(`(- alert: ${alert}\\n(?:.*\\n)*?\\s+expr: ).*`), `$1'${expr}'`);
        expect(mutated).not.toBe(rules);
        await writeFile(join(dir, 'letto-update-rules.yml'), mutated);
        const test = await promtool(['test', 'rules', join(dir, 'letto-update-rules.test.yml')]);
        expect(test.code, `${alert} ${what} must fail its test: ${test.output}`).not.toBe(0);
        expect(test.output).toContain(alert);
      }
    }
  });

  it('the rules use only metrics that `metrics` exports', async () => {
    const names = new Set((await readFile(RULES, 'utf8')).match(/letto_update_\w+/g));
    expect(names.size).toBeGreaterThan(4);
    for (const name of names) expect(exported, name).toContain(name);
  });

  it('the dashboard parses, has the panels asked for, and queries only exported metrics', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    expect(dashboard.panels.map((p) => p.title)).toEqual(['Servers', 'Downtime per update', 'Bytes saved by the delta download', 'Watchdog restarts', 'Revisions behind the channel']);
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(8);
    for (const expr of exprs) {
      const names = expr.match(/letto_update_\w+/g) ?? [];
      expect(names.length, expr).toBeGreaterThan(0);
      for (const name of names) expect(exported, `${name} in ${expr}`).toContain(name);
    }
  });
});

describeWithAnsible('contrib/ansible: letto_update_metrics_textfile', () => {
  it('the role\'s config.toml has [metrics] textfile when the variable is set, and no [metrics] section when it is empty', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'letto-ansible-metrics-'));
    try {
      const role = join(REPO_ROOT, 'contrib/ansible/roles/letto_update');
      await writeFile(
        join(dir, 'render.yml'),
        `- hosts: localhost\n  gather_facts: false\n  connection: local\n  vars_files: [${role}/defaults/main.yml]\n  tasks:\n` +
          `    - ansible.builtin.template: {src: ${role}/templates/config.toml.j2, dest: ${dir}/with.toml}\n      vars: {letto_update_metrics_textfile: /var/lib/prometheus/node-exporter/letto_update.prom}\n` +
          `    - ansible.builtin.template: {src: ${role}/templates/config.toml.j2, dest: ${dir}/without.toml}\n`,
      );
      await execFileAsync('ansible-playbook', ['-i', 'localhost,', join(dir, 'render.yml')], { env: { ...process.env, ANSIBLE_NOCOLOR: '1' } });
      const withTextfile = await loadConfig(join(dir, 'with.toml'), {});
      expect(withTextfile.config.metrics.textfile).toBe('/var/lib/prometheus/node-exporter/letto_update.prom');
      expect(await readFile(join(dir, 'without.toml'), 'utf8')).not.toContain('[metrics]');
      expect((await loadConfig(join(dir, 'without.toml'), {})).config.metrics.textfile).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
