/**
 * The command line: commander declares the commands and their flags; the work of each command lives in
 * its own module under src/commands/, loaded on demand, so that a command loads only what it uses
 * (`--version` and `--help` load no command module, `health` not the update machinery).
 * The one place that turns errors into exit codes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { parseDuration, parseDurationSeconds } from './config/duration.js';
import { ExitCode, PluginState, asLettoError, type LettoError } from './errors.js';
import type { Output } from './report/output.js';
import type { Channel } from './revision.js';
import type { CommandRun, GlobalOptions } from './commands/types.js';
import { version } from './version.js';

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
  const seconds = parseDuration(value);
  if (seconds === null || seconds <= 0) throw new InvalidArgumentError('must be a duration greater than 0, like 5 (seconds), 0.5, 500ms or 1m.');
  return seconds;
}

function parseCountArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0) throw new InvalidArgumentError('must be a whole number greater than 0.');
  return Number(value);
}

/**
 * Where the docs are on this machine: `docs/` beside the program (a git clone, `npm install -g`: under
 * `$(npm root -g)/letto-update`), else /usr/share/doc/letto-update (the Debian package). Looked up only
 * when --help is shown.
 */
function docsFolder(): string {
  // dist/cli.js and the bundle dist/bundle/cli.js lie one and two folders below the package's docs/
  const candidates = [fileURLToPath(new URL('../docs/', import.meta.url)), fileURLToPath(new URL('../../docs/', import.meta.url)), '/usr/share/doc/letto-update/'];
  return (candidates.find((dir) => existsSync(join(dir, 'usage.md')) || existsSync(join(dir, 'usage.md.gz'))) ?? candidates[0]!).replace(/\/$/, '');
}

/** `--channel`: merged into the config as a flag (flags win), so the commands follow `server.channel`. */
const channelOption = () => new Option('--channel <channel>', 'channel to follow (default: server.channel of the config)').choices(['stable', 'daily']);

/**
 * Builds the commander program. `run` receives each command's work (a function of the global flags
 * that loads the command's module) and turns it into output and an exit code.
 */
function buildProgram(run: Runner): Command {
  const program = new Command('letto-update')
    .description('Keeps a LeTTo server current — letto.war on TomEE, or LeTTo\'s Docker images with a [docker] config section: check, download, verify, swap, health check, rollback.')
    .version(version)
    .option('--config <file>', 'config file (default: $LETTO_UPDATE_CONFIG, else /etc/letto-update/config.toml)')
    .option('--json', 'print one JSON object on stdout and nothing else there')
    .option('--quiet', 'print only errors')
    .option('--verbose', 'print more detail, including stack traces of errors')
    .showHelpAfterError()
    .exitOverride();
  program.addHelpText(
    'after',
    () => `
Exit codes: 0 done/current, 1 failed (server untouched; also when the question is answered no),
2 usage or config error, 3 new revision failed and the old one runs again, 4 rollback failed too (needs
a person), 75 busy (another run or a backup), 100 (check) update available. \`health\` follows the
monitoring-plugin convention instead: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for config and usage errors).

Documentation: ${docsFolder()} (usage.md, configuration.md, operations.md, reliability.md)`,
  );
  addUpdateCommands(program, run);
  addReadingCommands(program, run);
  addUnattendedCommands(program, run);
  return program;
}

/** What `run` takes: a command's work, a function of the global flags that loads the command's module. */
type Runner = (work: (cmd: CommandRun) => Promise<number>) => void;

/** The commands that fetch or change a revision: check, download, update, rollback, recover. */
function addUpdateCommands(program: Command, run: Runner): void {
  program
    .command('check')
    .description('print the installed and the available revision (exit 0 current, 100 update available)')
    .addOption(channelOption())
    .action((opts: { channel?: Channel }) => run(async (cmd) => (await import('./commands/check.js')).checkCommand(cmd, opts)));

  program
    .command('download')
    .description('download and verify a revision into the staging folder (an interrupted download is continued), or pull its images (Docker); the server is not touched')
    .addOption(channelOption())
    .option('--revision <n>', 'a specific revision (from the archive if it is not the current one)', parseRevisionArg)
    .action((opts: { channel?: Channel; revision?: number }) => run(async (cmd) => (await import('./commands/download.js')).downloadCommand(cmd, opts)));

  program
    .command('update')
    .description('the whole job: check, download, verify, backup, restart with the new WAR (Docker: every LeTTo service on the new images at once), health check, rollback on failure')
    .addOption(channelOption())
    .option('--revision <n>', 'install this revision instead of the channel’s current one', parseRevisionArg)
    .option('--force', 'install even if this revision is already installed or newer')
    .option('--dry-run', 'a checked plan: what would be done (TomEE: scripts, folders, free space; Docker: images to pull, tags to move, compose folders in order) and every check that changes nothing; exit 1 when one fails')
    .option('--yes', 'do not ask for confirmation (never asked without a terminal anyway)')
    .option('--cron', 'for the nightly job: no output when there is nothing to do, a short time-stamped log when something happened; a revision that failed its health check is not tried again (until a newer one, or --force)')
    .option('--random-delay <duration>', 'first wait a random time up to DURATION (30m, 1h, 600 = seconds), so that many servers do not hit the download server at once', parseDurationArg)
    .action((opts: import('./commands/update.js').UpdateFlags) => run(async (cmd) => (await import('./commands/update.js')).updateCommand(cmd, opts)));

  program
    .command('rollback')
    .description('go back to the revision installed before the current one, or to --to N (local backup, else the server archive; Docker: kept images, else the registry)')
    .option('--to <n>', 'revision to roll back to', parseRevisionArg)
    .option('--yes', 'do not ask for confirmation')
    .option('--dry-run', 'say what the rollback would do (revisions; with [database]: restore, keep, or refuse) and change nothing; exit 1 when it would refuse')
    .option('--restore-database', 'when the schema differs from the target revision\'s dump: load that dump (loses everything written since; the current database is dumped first)')
    .option('--keep-database', 'when the schema differs from the target revision\'s dump: keep today\'s database; the old revision runs against it')
    .action((opts: import('./commands/rollback.js').RollbackFlags) => run(async (cmd) => (await import('./commands/rollback.js')).rollbackCommand(cmd, opts)));

  program
    .command('recover')
    .description('finish or undo what an interrupted (killed) update or rollback left; update, rollback and download do this first by themselves')
    .action(() => run(async (cmd) => (await import('./commands/recover.js')).recoverCommand(cmd)));
}

/** The commands that only read: list, status, health, history. */
function addReadingCommands(program: Command, run: Runner): void {
  program
    .command('list')
    .description('list local backups (Docker: revisions whose images are here), and with --remote the revisions in the server archive (Docker: the registry) (newest first)')
    .option('--remote', 'also list the server’s archiv/')
    .action((opts: { remote?: boolean }) => run(async (cmd) => (await import('./commands/list.js')).listCommand(cmd, opts)));

  program
    .command('status')
    .description('installed revision, whether TomEE runs (Docker: each LeTTo service and its revision), one health check, the last run, an interrupted run waiting for recovery, a TomEE script or compose command a killed run left running (exit 0 healthy, 1 not)')
    .action(() => run(async (cmd) => (await import('./commands/status.js')).statusCommand(cmd)));

  program
    .command('health')
    .description('monitoring plugin (monit, Nagios, Icinga): is TomEE running, and does health_url answer? One line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN')
    .option('-w, --warning <seconds>', 'WARNING when the answer takes longer than this', parseSecondsArg, 5)
    .option('-c, --critical <seconds>', 'CRITICAL when the answer takes longer than this (default: only --timeout)', parseSecondsArg)
    .option('-t, --timeout <seconds>', 'CRITICAL when there is no answer within this', parseSecondsArg, 10)
    .action((opts: { warning: number; critical?: number; timeout: number }) => run(async (cmd) => (await import('./commands/health.js')).healthCommand(cmd, opts)));
}

/** The commands of unattended operation and its record: watchdog, test-notify, history. */
function addUnattendedCommands(program: Command, run: Runner): void {
  program
    .command('watchdog')
    .description('restart TomEE when LeTTo stops answering ([watchdog] interval, failures, grace); never during a backup, an update or a maintenance pause')
    .addArgument(new Argument('[action]', 'run: check every interval seconds (default); pause: stop restarting for maintenance; resume; status').choices(['run', 'pause', 'resume', 'status']).default('run'))
    .option('--once', 'run: one check, then exit (for cron: * * * * *)')
    .option('--for <duration>', 'pause: end the pause by itself after DURATION (e.g. 2h)', parseDurationArg)
    .option('--reason <text>', 'pause: why (shown by health and watchdog status)')
    .action((action: import('./commands/watchdog.js').WatchdogAction, opts: import('./commands/watchdog.js').WatchdogFlags) =>
      run(async (cmd) => (await import('./commands/watchdog.js')).watchdogCommand(cmd, action, opts)),
    );

  program
    .command('test-notify')
    .description('send a test notification by every way [notify] configures (mail, webhook), whatever notify.when says (exit 0 sent, 1 failed)')
    .action(() => run(async (cmd) => (await import('./commands/test-notify.js')).testNotifyCommand(cmd)));

  program
    .command('metrics')
    .description('Prometheus metrics of this server (text format, for node_exporter\'s textfile collector or a scrape): installed and channel revision, last run, downtime, download bytes, watchdog restarts; read from local files only, no network. [metrics] textfile in the config keeps the same in a file, rewritten after every run')
    .option('--probe', 'also run the health check (adds letto_update_up)')
    .action((opts: { probe?: boolean }) => run(async (cmd) => (await import('./commands/metrics.js')).metricsCommand(cmd, opts)));

  program
    .command('history')
    .description('every recorded run (updates, rollbacks, watchdog restarts): time, from, to, result, duration')
    .option('--last <n>', 'only the newest N runs', parseCountArg)
    .action((opts: { last?: number }) => run(async (cmd) => (await import('./commands/history.js')).historyCommand(cmd, opts)));
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
 * (see guardSignals in src/commands/shared.ts).
 */
export async function main(argv: string[]): Promise<number> {
  ignoreClosedOutput();
  let pending: Promise<number> | null = null;
  let output: Output | null = null;
  const program = buildProgram((work) => {
    pending = work({ globals: program.opts<GlobalOptions>(), adopt: (out) => (output = out) });
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
        const { pluginLine } = await import('./report/health-check.js');
        process.stdout.write(pluginLine('UNKNOWN', 'usage error (see letto-update health --help)'));
        return PluginState.UNKNOWN;
      }
      return ExitCode.usage;
    }
    const failure: LettoError = asLettoError(error);
    const out = output ?? new (await import('./report/output.js')).Output({ json: argv.includes('--json'), quiet: false, verbose: argv.includes('--verbose') });
    if (plugin) {
      // monitoring plugins: one line on stdout, config and every other error is UNKNOWN; the whole
      // message and what to do go to stderr
      const { pluginLine } = await import('./report/health-check.js');
      out.plugin(pluginLine('UNKNOWN', failure.message.replace(/\.$/, '')));
      out.json({ state: 'UNKNOWN', summary: failure.message, hint: failure.hint, exitCode: PluginState.UNKNOWN });
      if (!out.mode.json) out.error(failure.message, failure.hint, error);
      return PluginState.UNKNOWN;
    }
    if (out.mode.cron) out.flushLog();
    out.error(failure.message, failure.hint, error);
    return failure.exitCode;
  }
}
