/**
 * Times for people are local time with the zone, the same in `status` and `history`; JSON keeps
 * ISO 8601 UTC. The built CLI with TZ set, reading a real runs.jsonl. And the prompt of `update` on a
 * real terminal (a pty from util-linux `script`): answering no is exit 1, nothing changed.
 */
import { execa } from 'execa';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, makeServerLayout, runCli, writeConfig, type ServerLayout } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';

let layout: ServerLayout;
let root: string;
let server: DownloadServer;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-times-'));
  await populateDownloadRoot(root, { stable: 6886, daily: 6890 });
  server = await startDownloadServer({ root, tls: true, user: 'letto', password: 'geheim' });
});
afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
});
afterEach(async () => {
  await layout?.cleanup();
});

const RUN = { time: '2026-11-21T02:15:02.120Z', command: 'update', from: 6880, to: 6886, result: 'updated', durationSeconds: 48.2, message: 'Revision 6886 runs.' };

describe('times for people: local time with the zone', () => {
  it.each([
    ['Europe/Vienna', '2026-11-21 03:15:02 CET'],
    ['UTC', '2026-11-21 02:15:02 UTC'],
    ['Asia/Kolkata', '2026-11-21 07:45:02 +05:30'],
  ])('TZ=%s: status and history show %s; --json keeps ISO UTC', async (tz, shown) => {
    layout = await makeServerLayout({ revision: 6886 });
    const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: 'letto' });
    await appendFile(join(layout.state, 'runs.jsonl'), `${JSON.stringify(RUN)}\n`);
    const env = { TZ: tz };
    const status = await runCli(['--config', config, 'status'], { env });
    expect(status.stdout).toContain(`last run: ${shown} update 6880 → 6886: updated\n`);
    const history = await runCli(['--config', config, 'history'], { env });
    const lines = history.stdout.split('\n');
    expect(lines[0]).toMatch(/^time +command {3}from → to/);
    expect(lines[1]).toMatch(new RegExp(`^${shown.replace(/[+]/g, '\\+')}  update    6880 → 6886 +updated +48\\.2 s$`));
    const json = JSON.parse((await runCli(['--json', '--config', config, 'history'], { env })).stdout) as { runs: Array<{ time: string }> };
    expect(json.runs[0]!.time).toBe(RUN.time);
    const statusJson = JSON.parse((await runCli(['--json', '--config', config, 'status'], { env })).stdout) as { lastRun: { time: string } };
    expect(statusJson.lastRun.time).toBe(RUN.time);
  });
});

describe('the question of update on a terminal', () => {
  it('answering "n" is exit 1 (documented), "Cancelled; nothing was changed.", no script run', async () => {
    layout = await makeServerLayout({ revision: 6880 });
    const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: 'letto' });
    // util-linux `script` gives the CLI a pseudo-terminal (stdin and stdout are TTYs), so it asks
    const run = await execa('script', ['-qec', `${process.execPath} ${CLI_BIN} --config ${config} update`, '/dev/null'], { input: 'n\n', reject: false, timeout: 60_000 });
    expect(run.stdout).toMatch(/Update LeTTo from revision 6880 to 6886 \(stable channel\); TomEE will be restarted\. Continue\? \[y\/N\]/);
    expect(run.stdout).toMatch(/Cancelled; nothing was changed\./);
    expect(run.exitCode).toBe(1);
    expect((await layout.calls()).filter((c) => c !== 'status')).toEqual([]);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
  });
});
