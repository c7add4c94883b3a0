/**
 * Real Prometheus parts for the metrics tests (Debian's `prometheus` and `prometheus-node-exporter`):
 * promtool, a node_exporter with only the textfile collector, and a Prometheus server scraping it every
 * second, both on loopback ports with temporary folders, killed by `close`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { freePort } from './net.js';

/** Why promtool, prometheus or node_exporter cannot be run here (null: all three can). */
export function prometheusMissing(): string | null {
  for (const [tool, args] of [['promtool', ['--version']], ['prometheus', ['--version']], ['prometheus-node-exporter', ['--version']]] as const) {
    try {
      execFileSync(tool, [...args], { stdio: 'ignore' });
    } catch {
      return `${tool} not found (apt install prometheus prometheus-node-exporter)`;
    }
  }
  return null;
}

/** `describe` that needs the three tools: skipped loudly without them, a failure with LETTO_E2E_REQUIRED=1. */
export function describeWithPrometheus(name: string, body: () => void): void {
  const missing = prometheusMissing();
  if (missing && process.env.LETTO_E2E_REQUIRED === '1') {
    describe(name, () => it('needs Prometheus (LETTO_E2E_REQUIRED=1)', () => { throw new Error(`LETTO_E2E_REQUIRED=1 but ${missing}.`); }));
    return;
  }
  if (missing) console.warn(`\n*** PROMETHEUS SUITE SKIPPED (${name}): ${missing}. ***\n`);
  describe.skipIf(missing !== null)(name, body);
}

/** Runs `promtool args…` with `input` on stdin; resolves with its exit code and output. */
export function promtool(args: string[], input = ''): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(input);
  });
}

/** A node_exporter and a Prometheus scraping it (see {@link startPrometheus}). */
export interface PrometheusStack {
  /** The folder node_exporter's textfile collector reads. */
  textfileDir: string;
  /** `http://127.0.0.1:<port>` of Prometheus. */
  url: string;
  /** One instant PromQL query over the HTTP API: the result's samples (labels and value). */
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: number }>>;
  close(): Promise<void>;
}

async function waitReady(url: string, child: ChildProcess, name: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${name} did not answer ${url} within 20 s`);
}

/**
 * Starts node_exporter (`--collector.disable-defaults --collector.textfile`, textfile folder in a temp
 * dir) and Prometheus (scrape interval 1 s, TSDB in a temp dir), both on free loopback ports.
 */
export async function startPrometheus(): Promise<PrometheusStack> {
  const root = await mkdtemp(join(tmpdir(), 'letto-prom-'));
  const textfileDir = join(root, 'textfile');
  await import('node:fs/promises').then((fs) => fs.mkdir(textfileDir));
  const exporterPort = await freePort();
  const exporter = spawn('prometheus-node-exporter', ['--web.listen-address', `127.0.0.1:${exporterPort}`, '--collector.disable-defaults', '--collector.textfile', `--collector.textfile.directory=${textfileDir}`], { stdio: 'ignore' });
  const promPort = await freePort();
  await writeFile(join(root, 'prometheus.yml'), `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:${exporterPort}']\n`);
  const prometheus = spawn('prometheus', [`--config.file=${join(root, 'prometheus.yml')}`, `--storage.tsdb.path=${join(root, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${promPort}`;
  const close = async () => {
    for (const child of [prometheus, exporter]) {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
    }
    await rm(root, { recursive: true, force: true });
  };
  try {
    await waitReady(`http://127.0.0.1:${exporterPort}/metrics`, exporter, 'node_exporter');
    await waitReady(`${url}/-/ready`, prometheus, 'prometheus');
  } catch (error) {
    await close();
    throw error;
  }
  return {
    textfileDir,
    url,
    close,
    query: async (promql) => {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await response.json()) as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      if (body.status !== 'success') throw new Error(`PromQL ${promql}: ${body.error ?? body.status}`);
      return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
  };
}

/**
 * Polls `promql` until `accept` returns true for its samples (Prometheus scrapes every second), or
 * throws after `seconds` with the last samples.
 */
export async function eventually(stack: PrometheusStack, promql: string, accept: (samples: Array<{ metric: Record<string, string>; value: number }>) => boolean, seconds = 15): Promise<Array<{ metric: Record<string, string>; value: number }>> {
  const deadline = Date.now() + seconds * 1000;
  let last: Array<{ metric: Record<string, string>; value: number }> = [];
  while (Date.now() < deadline) {
    last = await stack.query(promql);
    if (accept(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${promql} did not reach the expected value within ${seconds} s; last: ${JSON.stringify(last)}`);
}
