import { createInterface } from 'node:readline/promises';
import { readFileSync } from 'node:fs';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { parseDurationSeconds } from './duration.js';
import { ExitCode, PluginState, asLettoError, type LettoError } from './errors.js';
import { Output, stamp } from './output.js';
import type { Context } from './context.js';
import type { Channel } from './revision.js';
import { openSession, type Access, type Session } from './session.js';
import { describePause } from './watchdog-state.js';
import type { RunReport } from './update.js';

interface GlobalOptions {
  config?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function parseRevisionArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0) throw new InvalidArgumentError('must be a revision number like 6886.');
  return Number(value);
}

function parseDurationArg(value: string): number {
  const seconds = parseDurationSeconds(value);
  if (seconds === null) throw new InvalidArgumentError('must be a duration like 30m, 1h30m, 90s or 600 (seconds).');
  return seconds;
}

function parseSecondsArg(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0) throw new InvalidArgumentError('must be a number of seconds greater than 0, like 5 or 0.5.');
  return Number(value);
}

function parseCountArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0) throw new InvalidArgumentError('must be a whole number greater than 0.');
  return Number(value);
}

/** `--channel`: merged into the config as a flag (flags win), so the commands follow `server.channel`. */
const channelOption = () => new Option('--channel <channel>', 'channel to follow (default: server.channel of the config)').choices(['stable', 'daily']);

/** Exit code of an update/rollback report (see README, "Exit codes"). */
export function exitCodeOf(report: RunReport): number {
  switch (report.result) {
    case 'updated':
    case 'current':
    case 'skipped':
    case 'dry-run':
    case 'recovered':
      return ExitCode.ok;
    case 'rolled-back':
      return ExitCode.rolledBack;
    case 'rollback-failed':
      return ExitCode.rollbackFailed;
    default:
      return ExitCode.failed;
  }
}

/** Builds the commander program. `run` receives each command's work and turns it into output and an exit code. */
function buildProgram(run: (work: (program: Command) => Promise<number>) => void): Command {
  const program = new Command('letto-update')
    .description('Keeps a LeTTo server (letto.war on TomEE) current: check, download, verify, swap, health check, rollback.')
    .version(version)
    .option('--config <file>', 'config file (default: $LETTO_UPDATE_CONFIG, else /etc/letto-update/config.toml)')
    .option('--json', 'print one JSON object on stdout and nothing else there')
    .option('--quiet', 'print only errors')
    .option('--verbose', 'print more detail, including stack traces of errors')
    .showHelpAfterError()
    .exitOverride();
  program.addHelpText(
    'after',
    `
Exit codes: 0 done/current, 1 failed (server untouched), 2 usage or config error, 3 new revision failed
and the old one runs again, 4 rollback failed too (needs a person), 75 busy (another run or a backup),
100 (check) update available. \`health\` follows the monitoring-plugin convention instead:
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for config and usage errors).`,
  );

  program
    .command('check')
    .description('print the installed and the available revision (exit 0 current, 100 update available)')
    .addOption(channelOption())
    .action((opts: { channel?: Channel }) =>
      run(async () => {
        const { runCheck } = await import('./inspect.js');
        return withSession(program, 'read', opts.channel, async ({ ctx }, out) => {
          const report = await runCheck(ctx);
          out.json(report);
          out.line(`installed: ${report.installed ?? 'unknown'}`);
          out.line(`available (${report.channel}): ${report.available}`);
          out.line(report.updateAvailable ? 'An update is available: run `letto-update update`.' : 'LeTTo is up to date.');
          return report.updateAvailable ? ExitCode.updateAvailable : ExitCode.ok;
        });
      }),
    );

  program
    .command('download')
    .description('download and verify a revision into the staging folder (an interrupted download is continued); the server is not touched')
    .addOption(channelOption())
    .option('--revision <n>', 'a specific revision (from the archive if it is not the current one)', parseRevisionArg)
    .action((opts: { channel?: Channel; revision?: number }) =>
      run(async () => {
        const { runDownload } = await import('./update.js');
        return withSession(program, 'write', opts.channel, async ({ ctx }, out) => {
          const result = await runDownload(ctx, opts.revision !== undefined ? { revision: opts.revision } : {});
          out.json(result);
          out.line(`Revision ${result.revision} is downloaded and verified: ${result.path}${result.download ? ` (${result.download.text})` : ''}`);
          return ExitCode.ok;
        });
      }),
    );

  program
    .command('update')
    .description('the whole job: check, download, verify, backup, restart with the new WAR, health check, rollback on failure')
    .addOption(channelOption())
    .option('--revision <n>', 'install this revision instead of the channel’s current one', parseRevisionArg)
    .option('--force', 'install even if this revision is already installed or newer')
    .option('--dry-run', 'show what would be done; change nothing')
    .option('--yes', 'do not ask for confirmation (never asked without a terminal anyway)')
    .option('--cron', 'for the nightly job: no output when there is nothing to do, a short time-stamped log when something happened; a revision that failed its health check is not tried again (until a newer one, or --force)')
    .option('--random-delay <duration>', 'first wait a random time up to DURATION (30m, 1h, 600 = seconds), so that many servers do not hit the download server at once', parseDurationArg)
    .action((opts: { channel?: Channel; revision?: number; force?: boolean; dryRun?: boolean; yes?: boolean; cron?: boolean; randomDelay?: number }) =>
      run(async () => {
        const { runUpdate } = await import('./update.js');
        return withSession(program, opts.dryRun ? 'read' : 'write', opts.channel, async ({ ctx }, out) => {
          const confirm = opts.cron ? undefined : confirmer(out, opts.yes);
          const report = await runUpdate(ctx, {
            ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
            force: Boolean(opts.force),
            dryRun: Boolean(opts.dryRun),
            ...(confirm ? { confirm } : {}),
            cron: Boolean(opts.cron),
            ...(opts.randomDelay ? { randomDelaySeconds: opts.randomDelay } : {}),
          });
          return opts.cron ? finishCron(out, report) : finish(out, report);
        }, { cron: Boolean(opts.cron) });
      }),
    );

  program
    .command('rollback')
    .description('go back to the revision installed before the current one, or to --to N (local backup, else the server archive)')
    .option('--to <n>', 'revision to roll back to', parseRevisionArg)
    .option('--yes', 'do not ask for confirmation')
    .action((opts: { to?: number; yes?: boolean }) =>
      run(async () => {
        const { runRollback } = await import('./rollback.js');
        return withSession(program, 'write', undefined, async ({ ctx }, out) => {
          const confirm = confirmer(out, opts.yes);
          const report = await runRollback(ctx, { ...(opts.to !== undefined ? { to: opts.to } : {}), ...(confirm ? { confirm } : {}) });
          return finish(out, report);
        });
      }),
    );

  program
    .command('recover')
    .description('finish or undo what an interrupted (killed) update or rollback left; update, rollback and download do this first by themselves')
    .action(() =>
      run(async () => {
        const { runRecover } = await import('./run.js');
        return withSession(program, 'write', undefined, async ({ ctx }, out) => finish(out, await runRecover(ctx)));
      }),
    );

  program
    .command('list')
    .description('list local backups, and with --remote the revisions in the server archive (newest first)')
    .option('--remote', 'also list the server’s archiv/')
    .action((opts: { remote?: boolean }) =>
      run(async () => {
        const { runList } = await import('./inspect.js');
        return withSession(program, 'read', undefined, async ({ ctx }, out) => {
          const report = await runList(ctx, Boolean(opts.remote));
          out.json(report);
          out.line(`installed: ${report.installed ?? 'unknown'}`);
          out.line(`local backups (${ctx.config.paths.backups}):`);
          if (report.backups.length === 0) out.line('  none');
          for (const b of report.backups) out.line(`  ${b.revision}  ${(b.bytes / 1024 / 1024).toFixed(1)} MiB  ${b.time}`);
          if (report.remote) {
            out.line('server archive:');
            if (report.remote.length === 0) out.line('  none');
            for (const r of report.remote) out.line(`  ${r.revision}  ${r.url}`);
          }
          return ExitCode.ok;
        });
      }),
    );

  program
    .command('status')
    .description('installed revision, whether TomEE runs, one health check, the last run, an interrupted run waiting for recovery (exit 0 healthy, 1 not)')
    .action(() =>
      run(async () => {
        const { runStatus } = await import('./inspect.js');
        return withSession(program, 'read', undefined, async ({ ctx }, out) => {
          const report = await runStatus(ctx);
          out.json(report);
          out.line(`installed revision: ${report.installed ?? 'unknown'}`);
          out.line(`TomEE: ${report.running ? `running (PID ${report.pid})` : 'not running'}`);
          out.line(`health: ${report.health}`);
          const last = report.lastRun;
          out.line(`last run: ${last ? `${last.time} ${last.command} ${last.from ?? '?'} → ${last.to ?? '?'}: ${last.result}` : 'none recorded'}`);
          if (report.unfinished) out.line(`interrupted run: ${report.unfinished} The next update, rollback or \`letto-update recover\` finishes or undoes it.`);
          if (report.failedRevision) out.line(`failed revision: ${report.failedRevision.revision} (${report.failedRevision.time}); the nightly run skips it until a newer one appears`);
          if (report.watchdogPause) out.line(`watchdog: paused ${describePause(report.watchdogPause)}`);
          return report.running && report.healthy ? ExitCode.ok : ExitCode.failed;
        });
      }),
    );

  program
    .command('health')
    .description('monitoring plugin (monit, Nagios, Icinga): is TomEE running, and does health_url answer? One line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN')
    .option('-w, --warning <seconds>', 'WARNING when the answer takes longer than this', parseSecondsArg, 5)
    .option('-c, --critical <seconds>', 'CRITICAL when the answer takes longer than this (default: only --timeout)', parseSecondsArg)
    .option('-t, --timeout <seconds>', 'CRITICAL when there is no answer within this', parseSecondsArg, 10)
    .action((opts: { warning: number; critical?: number; timeout: number }) =>
      run(async () => {
        const { checkHealth } = await import('./health-check.js');
        return withSession(program, 'read', undefined, async ({ ctx }, out) => {
          const report = await checkHealth(ctx, { warning: opts.warning, critical: opts.critical ?? null, timeout: opts.timeout });
          out.json({ ...report, exitCode: PluginState[report.state] });
          out.plugin(`LETTO ${report.state} - ${report.summary}${report.perfdata ? ` | ${report.perfdata}` : ''}`);
          return PluginState[report.state];
        }, { local: true });
      }),
    );

  program
    .command('watchdog')
    .description('restart TomEE when LeTTo stops answering ([watchdog] interval, failures, grace); never during a backup, an update or a maintenance pause')
    .addArgument(new Argument('[action]', 'run: check every interval seconds (default); pause: stop restarting for maintenance; resume; status').choices(['run', 'pause', 'resume', 'status']).default('run'))
    .option('--once', 'run: one check, then exit (for cron: * * * * *)')
    .option('--for <duration>', 'pause: end the pause by itself after DURATION (e.g. 2h)', parseDurationArg)
    .option('--reason <text>', 'pause: why (shown by health and watchdog status)')
    .action((action: 'run' | 'pause' | 'resume' | 'status', opts: { once?: boolean; for?: number; reason?: string }) =>
      run(() =>
        withSession(program, action === 'status' ? 'read' : 'write', undefined, ({ ctx }, out) => watchdogCommand(ctx, out, action, opts), {
          local: true,
          cron: action === 'run',
        }),
      ),
    );

  program
    .command('test-notify')
    .description('send a test notification by every way [notify] configures (mail, webhook), whatever notify.when says (exit 0 sent, 1 failed)')
    .action(() =>
      run(async () => {
        const { sendTestNotice } = await import('./notify.js');
        return withSession(program, 'read', undefined, async ({ ctx }, out) => {
          const { tried, failures } = await sendTestNotice(ctx);
          out.json({ tried, failures });
          if (tried.length === 0) {
            out.error('[notify] names no recipient: nothing to send.', 'Set notify.email_to and/or notify.webhook_url (docs/configuration.md).');
            return ExitCode.failed;
          }
          if (failures.length > 0) {
            out.error(failures.join('; ') + '.', 'Check notify.smtp_url, notify.smtp_user and the SMTP password (notify.smtp_password_file or LETTO_UPDATE_SMTP_PASSWORD), or notify.webhook_url.');
            return ExitCode.failed;
          }
          out.line(`Sent: ${tried.join('; ')}.`);
          return ExitCode.ok;
        }, { local: true });
      }),
    );

  program
    .command('history')
    .description('every recorded run (updates, rollbacks, watchdog restarts): time, from, to, result, duration')
    .option('--last <n>', 'only the newest N runs', parseCountArg)
    .action((opts: { last?: number }) =>
      run(async () => {
        const { runHistory, formatHistory } = await import('./history.js');
        return withSession(program, 'read', undefined, async ({ ctx }, out) => {
          const runs = await runHistory(ctx, opts.last);
          out.json({ runs });
          if (runs.length === 0) out.line(`No runs recorded yet (${ctx.state.dir}/runs.jsonl).`);
          for (const line of formatHistory(runs)) out.line(line);
          return ExitCode.ok;
        }, { local: true });
      }),
    );
  return program;
}

/** `watchdog run|pause|resume|status`: what the CLI prints and the exit code (see docs/usage.md). */
async function watchdogCommand(
  ctx: Context,
  out: Output,
  action: 'run' | 'pause' | 'resume' | 'status',
  opts: { once?: boolean; for?: number; reason?: string },
): Promise<number> {
  const watchdog = await import('./watchdog.js');
  const state = await import('./watchdog-state.js');
  if (action === 'pause') {
    const pause = await state.writePause(ctx, opts.reason ?? '', opts.for ?? null);
    out.json(pause);
    out.line(`Watchdog paused${pause.until ? ` until ${pause.until}` : ''}: it restarts nothing and \`health\` reports a down LeTTo as WARNING. End it with \`letto-update watchdog resume\`.`);
    return ExitCode.ok;
  }
  if (action === 'resume') {
    const was = await state.removePause(ctx);
    out.json({ resumed: was });
    out.line(was ? 'Watchdog resumed.' : 'The watchdog was not paused.');
    return ExitCode.ok;
  }
  if (action === 'status') {
    const counters = await state.readCounters(ctx);
    const pause = await state.readPause(ctx);
    out.json({ ...counters, pause, config: ctx.config.watchdog });
    out.line(`pause: ${pause ? describePause(pause) : 'none'}`);
    out.line(`failures in a row: ${counters.failures} of ${ctx.config.watchdog.failures}`);
    out.line(`last check: ${counters.lastCheck ?? 'never'}${counters.lastAction ? ` (${counters.lastAction})` : ''}`);
    out.line(`last restart: ${counters.lastRestart ?? 'never'}`);
    return ExitCode.ok;
  }
  // steps (stop, start, health) are collected with time stamps and printed with the check's line
  const show = (report: import('./watchdog.js').WatchdogReport): number => {
    if (report.action === 'restart-failed' || report.action === 'unknown') {
      out.flushLog();
      out.error(`watchdog: ${report.message}`, '');
      return ExitCode.failed;
    }
    if (report.action !== 'healthy' && report.action !== 'paused') out.flushLog(`watchdog: ${report.message}`);
    else out.flushLog();
    return ExitCode.ok;
  };
  if (opts.once) {
    const report = await watchdog.watchdogOnce(ctx);
    out.json(report);
    return show(report);
  }
  const { interval, failures, grace } = ctx.config.watchdog;
  out.stopNote = 'the watchdog stopped.';
  out.line(`${stamp()} watchdog: checking ${ctx.config.tomee.health_url} every ${interval} s; restart after ${failures} failed checks in a row, not again within ${grace} s.`);
  await watchdog.watchdogLoop(ctx, (report) => {
    out.json(report);
    show(report);
  });
  return ExitCode.ok;
}

function confirmer(out: Output, yes: boolean | undefined): ((question: string) => Promise<boolean>) | undefined {
  if (yes || out.mode.json || !process.stdin.isTTY || !process.stdout.isTTY) return undefined;
  return async (question) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try {
      return /^(y|yes|j|ja)$/i.test((await rl.question(`${question} [y/N] `)).trim());
    } finally {
      rl.close();
    }
  };
}

function finish(out: Output, report: RunReport): number {
  const code = exitCodeOf(report);
  out.json({ ...report, exitCode: code });
  if (code === ExitCode.ok || report.result === 'cancelled') out.line(report.message);
  else if (!out.mode.json) out.error(report.message, report.hint ?? ''); // the JSON report carries message and hint
  return code;
}

/**
 * `update --cron`: nothing at all when there was nothing to do (no new revision, or only the one that
 * failed before) and nothing went wrong; else the collected steps as a short time-stamped log, the
 * result last (errors on stderr). Exit codes as without --cron.
 */
function finishCron(out: Output, report: RunReport): number {
  const code = exitCodeOf(report);
  out.json({ ...report, exitCode: code });
  if ((report.result === 'current' || report.result === 'skipped') && !out.warned) return code;
  if (code === ExitCode.ok) {
    out.flushLog(`${report.result}: ${report.message} (${report.from ?? '?'} → ${report.to ?? '?'}, ${report.durationSeconds} s)`);
  } else {
    out.flushLog();
    if (!out.mode.json) out.error(report.message, report.hint ?? '');
  }
  return code;
}

let currentOutput: Output | null = null;

/**
 * Ctrl-C, SIGTERM and SIGHUP: before TomEE is stopped the run ends at once (exit 130; a partial
 * download and the run lock are cleaned up by the next run). While TomEE is stopped or restarting,
 * the signal is held back so the run can finish or undo what it started: leaving LeTTo down is worse.
 */
function guardSignals(out: Output): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (out.critical) {
        out.notice(`${signal} received while TomEE is being restarted; finishing this update or its rollback first.`);
        return;
      }
      out.notice(`${signal} received; ${out.stopNote}`);
      process.exit(130);
    });
  }
}

async function withSession(
  program: Command,
  access: Access,
  channel: Channel | undefined,
  body: (session: Session, out: Output) => Promise<number>,
  extra: { cron?: boolean; local?: boolean } = {},
): Promise<number> {
  const globals = program.opts<GlobalOptions>();
  const out = new Output({ json: Boolean(globals.json), quiet: Boolean(globals.quiet), verbose: Boolean(globals.verbose), cron: Boolean(extra.cron) });
  currentOutput = out;
  guardSignals(out);
  const session = await openSession({
    ...(globals.config ? { configPath: globals.config } : {}),
    flags: channel ? { channel } : {},
    access,
    ...(extra.local ? { local: true } : {}),
    emit: out.onEvent,
  });
  try {
    return await body(session, out);
  } finally {
    await session.close();
  }
}

/** The command named in `argv` (process.argv shape): the first word that is not an option or the value of --config. */
export function commandOf(argv: string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--config') i++;
    else if (!word.startsWith('-')) return word;
  }
  return undefined;
}

/**
 * A reader that went away (`letto-update list | head`, a closed ssh session) is not a failure: what is
 * still to be printed is dropped, and a running update or rollback goes on to its end instead of dying
 * of an unhandled EPIPE halfway through.
 */
function ignoreClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
    });
  }
}

/**
 * Runs the CLI with `argv` (process.argv shape) and returns the exit code. The one place that turns
 * errors into exit codes; the only process.exit is an interrupt before the server is touched
 * (see guardSignals).
 */
export async function main(argv: string[]): Promise<number> {
  ignoreClosedOutput();
  let pending: Promise<number> | null = null;
  const program = buildProgram((work) => {
    pending = work(program);
  });
  const plugin = commandOf(argv) === 'health';
  try {
    await program.parseAsync(argv);
    if (!pending) {
      program.outputHelp();
      return ExitCode.usage;
    }
    return await pending;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return ExitCode.ok;
      if (plugin) {
        process.stdout.write('LETTO UNKNOWN - usage error (see letto-update health --help)\n');
        return PluginState.UNKNOWN;
      }
      return ExitCode.usage;
    }
    const failure: LettoError = asLettoError(error);
    const out = currentOutput ?? new Output({ json: argv.includes('--json'), quiet: false, verbose: argv.includes('--verbose') });
    if (plugin) {
      // monitoring plugins: one line on stdout, config and every other error is UNKNOWN
      out.plugin(`LETTO UNKNOWN - ${failure.message}`);
      out.json({ state: 'UNKNOWN', summary: failure.message, hint: failure.hint, exitCode: PluginState.UNKNOWN });
      if (failure.hint && !out.mode.json) process.stderr.write(`what to do: ${failure.hint}\n`);
      return PluginState.UNKNOWN;
    }
    if (out.mode.cron) out.flushLog();
    out.error(failure.message, failure.hint, error);
    return failure.exitCode;
  }
}
