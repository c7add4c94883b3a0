/**
 * A command run by hand answers within seconds when the download server cannot be reached; the nightly
 * run (`update --cron`) keeps its patience. Real loopback sockets: a TCP server that accepts and never
 * says a word, an HTTPS server whose TLS handshake is never answered, and a proxy variable pointing at a
 * closed port. Wall times are measured around the built CLI (its start-up included).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { makeServerLayout, runCli, writeConfig, type ServerLayout } from '../support/cli.js';

let silent: Server;
let silentPort: number;
let connections = 0;
const sockets = new Set<Socket>();
let closedPort: number;
let layout: ServerLayout;

beforeAll(async () => {
  // accepts every connection, reads what comes, never answers (neither HTTP nor a TLS handshake)
  silent = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.resume();
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentPort = (silent.address() as { port: number }).port;
  // a port that was just free: nothing listens there
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  layout = await makeServerLayout({ revision: 6880 });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  await layout?.cleanup();
});

async function timed(args: string[], env: Record<string, string> = {}) {
  const started = performance.now();
  const run = await runCli(args, { env, timeoutMs: 120_000 });
  return { ...run, seconds: (performance.now() - started) / 1000 };
}

describe('a command run by hand: an answer within seconds', () => {
  it('check against a server that accepts and stays silent: exit 1 after server.interactive_timeout (default 15 s), not after minutes of retries', async () => {
    // the defaults otherwise: 5 retries, connect_timeout 30 s, idle_timeout 60 s (minutes before the deadline)
    const config = await writeConfig(layout, { url: `http://127.0.0.1:${silentPort}/download/letto/`, caPem: '' });
    connections = 0;
    const run = await timed(['--config', config, 'check']);
    expect(run.exitCode).toBe(ExitCode.failed);
    expect(run.seconds).toBeGreaterThanOrEqual(14.5);
    expect(run.seconds).toBeLessThan(20);
    expect(run.stderr).toMatch(new RegExp(`error: No answer from 127\\.0\\.0\\.1:${silentPort} within 15 s \\(server\\.interactive_timeout, the limit for a command run by hand\\): http://127\\.0\\.0\\.1:${silentPort}/download/letto/stable-revision\\.txt\\. Nothing was changed\\.`));
    expect(run.stderr).toMatch(/what to do: Check that 127\.0\.0\.1:\d+ is up and reachable from here .*The nightly run \(update --cron\) waits longer/);
    expect(run.stderr).not.toContain('through the proxy');
    expect(run.stdout).toBe('');
    // the deadline is final: no second attempt after it
    expect(connections).toBe(1);
  }, 60_000);

  it('a TLS handshake that is never answered: the deadline covers connecting too (interactive_timeout = 2)', async () => {
    const config = await writeConfig(layout, { url: `https://127.0.0.1:${silentPort}/download/letto/`, caPem: '' }, { server: { interactive_timeout: '2s' } });
    const run = await timed(['--config', config, 'check']);
    expect(run.exitCode).toBe(ExitCode.failed);
    expect(run.seconds).toBeGreaterThanOrEqual(1.9);
    expect(run.seconds).toBeLessThan(5);
    expect(run.stderr).toMatch(/No answer from 127\.0\.0\.1:\d+ within 2 s \(server\.interactive_timeout/);
  });

  it('HTTPS_PROXY pointing at a closed port: exit 1 within seconds (two quick retries), the message and hint name the proxy and its variable', async () => {
    const config = await writeConfig(layout, { url: 'https://letto.example.org/download/letto/', caPem: '' });
    const run = await timed(['--config', config, 'check'], { HTTPS_PROXY: `http://proxyuser:proxypw@127.0.0.1:${closedPort}` });
    expect(run.exitCode).toBe(ExitCode.failed);
    expect(run.seconds).toBeLessThan(8);
    expect(run.stderr.match(/warning: .*attempt \d failed/g)).toHaveLength(2);
    expect(run.stderr).toContain(`error: Cannot reach https://letto.example.org/download/letto/stable-revision.txt through the proxy http://127.0.0.1:${closedPort} (HTTPS_PROXY): `);
    expect(run.stderr).toMatch(/ECONNREFUSED/);
    expect(run.stderr).toContain(
      `what to do: Nothing was changed. Check that the proxy http://127.0.0.1:${closedPort} (set by HTTPS_PROXY in the environment) is up and lets letto.example.org through; or unset HTTPS_PROXY, or add letto.example.org to NO_PROXY, to connect directly.`,
    );
    // the proxy's credentials never appear
    expect(run.stderr).not.toContain('proxypw');
  });

  it('the lower-case https_proxy is named as it was set', async () => {
    const config = await writeConfig(layout, { url: 'https://letto.example.org/download/letto/', caPem: '' }, { server: { retries: 0 } });
    const run = await timed(['--config', config, 'check'], { https_proxy: `http://127.0.0.1:${closedPort}` });
    expect(run.exitCode).toBe(ExitCode.failed);
    expect(run.stderr).toContain(`through the proxy http://127.0.0.1:${closedPort} (https_proxy)`);
    expect(run.stderr).toContain('unset https_proxy');
  });
});

describe('the nightly run keeps its patience', () => {
  it('update --cron against the silent server waits idle_timeout for each attempt, past interactive_timeout', async () => {
    const config = await writeConfig(
      layout,
      { url: `http://127.0.0.1:${silentPort}/download/letto/`, caPem: '' },
      { server: { interactive_timeout: 1, idle_timeout: 2, retries: 1, retry_wait: 0.1 } },
    );
    connections = 0;
    const run = await timed(['--config', config, 'update', '--cron']);
    expect(run.exitCode).toBe(ExitCode.failed);
    // two attempts of 2 s each: the 1 s deadline of a command run by hand did not apply
    expect(run.seconds).toBeGreaterThanOrEqual(3.9);
    expect(connections).toBe(2);
    expect(run.stderr).toMatch(/no data from the server for 2 s/);
    expect(run.stderr).not.toMatch(/interactive_timeout/);
  });
});
