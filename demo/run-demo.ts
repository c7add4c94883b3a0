/**
 * `npm run demo`: shows letto-update's main job with the real, built CLI on a throw-away LeTTo server
 * in a temp folder — no Java, no TomEE, no root needed (it works as root too).
 *
 * - a local download server like https://letto.at/download/letto/ (HTTPS with its own CA, Basic auth):
 *   stable 6886, daily 6890 (a broken build), archiv/ with 6870, 6880, 6886;
 * - a TomEE-like server (demo/fake-tomee.mjs) started and stopped by LeTTo-style scripts, running
 *   revision 6880 at first;
 * - then `letto-update` runs: check → update → check → update to the broken daily build (rolled back
 *   automatically) → status → rollback by hand to 6880 → list --remote.
 *
 * - then, where Docker is available (root, the engine, compose, docker-registry, busybox-static), the
 *   same commands on a throw-away LeTTo Docker install (demo/docker-demo.ts); where it is not, the demo
 *   says so plainly and still passes.
 *
 * usage: node --import tsx demo/run-demo.ts [--keep] [--skip-docker]   (needs `npm run build` first; `npm run demo` does both)
 *   --keep         leave the temp folder in place (TomEE and the download server are stopped anyway)
 *   --skip-docker  only the TomEE demo
 *
 * Exit status 0 when every step ended with the expected exit code and LeTTo answered with the expected
 * revision afterwards; 1 otherwise; 130 when interrupted.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../test/support/download-server.js';
import { createDemoServer, demoLayout, type DemoLayout } from './layout.js';
import { runDockerDemo } from './docker-demo.js';
import { freePort } from '../test/support/net.js';

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
const CLI = join(REPO, 'bin', 'letto-update.js');

const INSTALLED = 6880;
const STABLE = 6886;
const DAILY = 6890; // broken: its web.xml names a listener class that is not in the WAR
const ARCHIVE = [6870, 6880, 6886];
const USER = 'letto';
const PASSWORD = 'demo-secret-4711';
const HEALTH_TIMEOUT = 8;
/** Seconds one CLI command may take before the demo kills it (the slowest step takes about 12 s). */
const STEP_TIMEOUT = 60;

const tty = process.stdout.isTTY === true;
const bold = (s: string): string => (tty ? `\x1b[1m${s}\x1b[22m` : s);
const green = (s: string): string => (tty ? `\x1b[32m${s}\x1b[39m` : s);
const red = (s: string): string => (tty ? `\x1b[31m${s}\x1b[39m` : s);
const dim = (s: string): string => (tty ? `\x1b[2m${s}\x1b[22m` : s);
const say = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

/** One demo step: a CLI command, the exit code it must end with, and the revision LeTTo must run after it. */
interface Step {
  title: string;
  args: string[];
  expectExit: number;
  expectRevision: number;
  /** Extra output after the step (e.g. the SEVERE lines of catalina.out). */
  after?: () => Promise<void>;
}

interface StepResult {
  step: Step;
  exit: number | null;
  revision: number | null;
  ms: number;
  ok: boolean;
}

/** The environment for child processes, without any LETTO_UPDATE_* that would override the demo config. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LETTO_UPDATE_')) env[k] = v;
  return env;
}

/**
 * A terminal that reports 0 columns (e.g. `script` without a real terminal, some CI pseudo-terminals):
 * the CLI's progress spinner (ora 8) never finishes clearing its line there, so the CLI would hang.
 * On such a terminal the CLI's output is passed through pipes instead (no spinner).
 */
const zeroWidthTerminal = [process.stdout, process.stderr].some((s) => s.isTTY && !s.columns);

/**
 * Runs a command; `show` passes its output on to the user (on the demo's own terminal when it has one).
 * Resolves with the exit code (null: killed) and, unless it went straight to the terminal, the output.
 */
function run(command: string, args: string[], opts: { show: boolean; timeoutMs?: number }): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const inherit = opts.show && !zeroWidthTerminal;
    const child = spawn(command, args, {
      stdio: inherit ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
      env: childEnv(),
      cwd: REPO,
    });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
      if (opts.show) process.stdout.write(d);
    });
    child.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
      if (opts.show) process.stderr.write(d);
    });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : null;
    child.on('error', (error) => {
      if (timer) clearTimeout(timer);
      resolve({ code: null, output: `${output}${error.message}\n` });
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Asks LeTTo itself which revision answers (the fixture's test.jsf says `LeTTo test page revision N`). */
async function answeringRevision(port: number): Promise<{ revision: number | null; text: string }> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/letto/test.jsf`, { signal: AbortSignal.timeout(3000) });
    const body = await response.text();
    const match = /revision (\d+)/.exec(body);
    if (response.status === 200 && match) return { revision: Number(match[1]), text: `LeTTo answers: revision ${match[1]}` };
    return { revision: null, text: `LeTTo does not answer (HTTP ${response.status})` };
  } catch (error) {
    return { revision: null, text: `LeTTo does not answer (${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message})` };
  }
}

async function waitForRevision(port: number, seconds: number): Promise<number | null> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const { revision } = await answeringRevision(port);
    if (revision !== null || Date.now() > deadline) return revision;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { keep: { type: 'boolean', default: false }, 'skip-docker': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) {
    say('usage: npm run demo [-- --keep] [-- --skip-docker]     (or: node --import tsx demo/run-demo.ts [--keep] [--skip-docker] after npm run build)');
    return 0;
  }
  if (!existsSync(join(REPO, 'dist', 'cli.js'))) {
    process.stderr.write('The CLI is not built: run `npm run build` first (`npm run demo` does it for you).\n');
    return 1;
  }

  const started = Date.now();
  const root = await mkdtemp(join(tmpdir(), 'letto-update-demo-'));
  const l: DemoLayout = demoLayout(root);
  let server: DownloadServer | null = null;
  let cleaned: Promise<void> | null = null;
  let interrupted = false;

  const cleanup = (): Promise<void> =>
    (cleaned ??= (async () => {
      if (existsSync(l.scripts.stop)) {
        const stopped = await run(l.scripts.stop, [], { show: false, timeoutMs: 20_000 });
        if (stopped.code !== 0) process.stderr.write(`demo: stop.sh said: ${stopped.output.trim()}\n`);
      }
      // Belt and braces: whatever the pid file still names goes too.
      const pid = Number((await readFile(l.pidFile, 'utf8').catch(() => '')).trim());
      if (Number.isSafeInteger(pid) && pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await server?.close();
      if (values.keep) say(dim(`Kept ${root} (TomEE stand-in and download server are stopped).`));
      else await rm(root, { recursive: true, force: true });
    })());

  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\ndemo: ${signal} received, cleaning up…\n`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // 1. The download server, like https://letto.at/download/letto/ (HTTPS, Basic auth, archiv/).
    await populateDownloadRoot(l.downloadRoot, { stable: STABLE, daily: DAILY, archive: ARCHIVE, brokenRevisions: [DAILY] });
    server = await startDownloadServer({ root: l.downloadRoot, tls: true, user: USER, password: PASSWORD });
    // 2. The LeTTo server: layout, scripts, config; TomEE running revision 6880.
    const tomeePort = await freePort();
    await createDemoServer(l, {
      installed: INSTALLED,
      tomeePort,
      download: { url: server.url, user: USER, password: PASSWORD, caPem: server.caPem },
      healthTimeout: HEALTH_TIMEOUT,
    });
    const startOut = await run(l.scripts.start, [], { show: false, timeoutMs: 20_000 });
    if (startOut.code !== 0) throw new Error(`start.sh failed (${startOut.code}): ${startOut.output}`);
    const initial = await waitForRevision(tomeePort, 20);
    if (initial !== INSTALLED) throw new Error(`The TomEE stand-in did not come up with revision ${INSTALLED}; see ${l.catalinaOut}`);

    const rel = (p: string): string => `$DEMO/${relative(root, p)}`;
    say(bold('letto-update demo'));
    say(`  temp folder ($DEMO)   ${root}`);
    say(`  download server       ${server.url}  (HTTPS with a self-signed CA, Basic auth as "${USER}")`);
    say(`                        stable ${STABLE}, daily ${DAILY} (a broken build), archiv/ ${ARCHIVE.join(', ')}`);
    say(`  TomEE stand-in        ${rel(l.tomee)}, LeTTo at http://127.0.0.1:${tomeePort}/letto/ — running revision ${initial}`);
    say(`  control scripts       ${rel(l.letto)}/{start,stop,status}.sh`);
    say(`  config                ${rel(l.config)}  (health_timeout ${HEALTH_TIMEOUT} s)`);

    const showSevere = async (): Promise<void> => {
      const log = await readFile(l.catalinaOut, 'utf8').catch(() => '');
      const lines = log.split('\n').filter((line) => /SEVERE|ClassNotFoundException/.test(line));
      if (lines.length === 0) return;
      say(dim(`  what ${rel(l.catalinaOut)} says about revision ${DAILY}:`));
      for (const line of lines.slice(-4)) say(dim(`    ${line.trim()}`));
    };

    const steps: Step[] = [
      { title: 'Is an update available?', args: ['check'], expectExit: 100, expectRevision: INSTALLED },
      { title: `Update to the stable revision ${STABLE}`, args: ['update', '--yes'], expectExit: 0, expectRevision: STABLE },
      { title: 'Check again', args: ['check'], expectExit: 0, expectRevision: STABLE },
      {
        title: `Update to the daily build ${DAILY}: it does not start, so letto-update puts ${STABLE} back (about ${HEALTH_TIMEOUT + 4} s)`,
        args: ['update', '--channel', 'daily', '--yes'],
        expectExit: 3,
        expectRevision: STABLE,
        after: showSevere,
      },
      { title: 'Status', args: ['status'], expectExit: 0, expectRevision: STABLE },
      { title: `Roll back by hand to revision ${INSTALLED} (from the local backup)`, args: ['rollback', '--to', String(INSTALLED), '--yes'], expectExit: 0, expectRevision: INSTALLED },
      { title: 'Local backups and the server archive', args: ['list', '--remote'], expectExit: 0, expectRevision: INSTALLED },
    ];

    const results: StepResult[] = [];
    for (const [index, step] of steps.entries()) {
      if (interrupted) break;
      say();
      say(bold(`── ${index + 1}/${steps.length} ${step.title}`));
      say(dim(`$ letto-update --config ${rel(l.config)} ${step.args.join(' ')}`));
      const t0 = Date.now();
      const { code } = await run(process.execPath, [CLI, '--config', l.config, ...step.args], { show: true, timeoutMs: STEP_TIMEOUT * 1000 });
      if (code === null) say(red(`letto-update did not finish within ${STEP_TIMEOUT} s and was killed.`));
      const ms = Date.now() - t0;
      if (interrupted) break;
      await step.after?.();
      const { revision, text } = await answeringRevision(tomeePort);
      const ok = code === step.expectExit && revision === step.expectRevision;
      results.push({ step, exit: code, revision, ms, ok });
      const exitText = code === step.expectExit ? `exit ${code}` : red(`exit ${code}, expected ${step.expectExit}`);
      const revText = revision === step.expectRevision ? text : red(`${text}, expected revision ${step.expectRevision}`);
      say(`${ok ? green('✓') : red('✗')} ${exitText} · ${revText} · ${(ms / 1000).toFixed(1)} s`);
    }
    if (interrupted) return 130;

    say();
    say(bold('Summary'));
    for (const r of results) {
      say(
        `  ${r.ok ? green('✓') : red('✗')} ${`letto-update ${r.step.args.join(' ')}`.padEnd(46)} exit ${String(r.exit).padEnd(3)} (expected ${String(r.step.expectExit).padEnd(3)}) revision ${r.revision ?? '-'}  ${(r.ms / 1000).toFixed(1)} s`,
      );
    }
    const failed = results.filter((r) => !r.ok);
    say(`TomEE demo ${failed.length === 0 ? green('passed') : red(`FAILED (${failed.length} of ${results.length} steps)`)} in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
    if (failed.length > 0) say(`catalina.out and the state folder are in ${root}${values.keep ? '' : ' (run with --keep to look at them)'}.`);
    let dockerOk = true;
    say();
    if (values['skip-docker']) {
      say(bold('Docker install: skipped (--skip-docker).'));
    } else {
      say(bold('Docker install (the same commands on a LeTTo Docker install)'));
      const docker = await runDockerDemo(CLI, say, bold, dim);
      if ('skipped' in docker) {
        say(`Docker install: NOT SHOWN on this machine: ${docker.skipped}. The TomEE demo above is complete without it; docs/docker.md describes the Docker install.`);
      } else {
        dockerOk = docker.ok;
        say(`Docker demo ${docker.ok ? green('passed') : red(`FAILED (${docker.steps.filter((r) => !r.ok).length} of ${docker.steps.length} steps)`)}.`);
      }
    }
    return failed.length === 0 && dockerOk ? 0 : 1;
  } catch (error) {
    process.stderr.write(`demo: ${(error as Error).stack ?? String(error)}\n`);
    const log = await readFile(l.catalinaOut, 'utf8').catch(() => '');
    if (log) process.stderr.write(`--- ${l.catalinaOut} (last lines) ---\n${log.split('\n').slice(-20).join('\n')}\n`);
    return 1;
  } finally {
    await cleanup();
  }
}

process.exitCode = await main();
