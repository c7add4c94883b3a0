/**
 * contrib/bash-completion/letto-update in a real bash: what it offers is what the built CLI's --help
 * lists (every command, every flag of every command), and the values a flag takes.
 */
import { execa } from 'execa';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/cli.js';

const SCRIPT = join(REPO_ROOT, 'contrib', 'bash-completion', 'letto-update');

/** What the completion offers for the command line `words` (the last word is the one being completed). */
async function complete(...words: string[]): Promise<string[]> {
  const line = ['letto-update', ...words].map((w) => `'${w}'`).join(' ');
  const { stdout } = await execa('bash', ['--norc', '--noprofile', '-c', `source '${SCRIPT}'; COMP_WORDS=(${line}); COMP_CWORD=${words.length}; _letto_update; printf '%s\\n' "\${COMPREPLY[@]}"`]);
  return stdout.split('\n').filter(Boolean).sort();
}

/** The commands and flags a --help text lists. */
function fromHelp(help: string): { commands: string[]; flags: string[] } {
  const section = (name: string) => help.split(`${name}:\n`)[1]?.split(/\n\n|\n[A-Z]/)[0] ?? '';
  const commands = [...section('Commands').matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!);
  const flags = [...section('Options').matchAll(/^ {2}(.*?)(?: {2,}|$)/gm)].flatMap((m) => [...m[1]!.matchAll(/(--?[a-z-]+)/g)].map((f) => f[1]!));
  return { commands, flags };
}

describe('bash completion', () => {
  it('offers every command and global flag of --help', async () => {
    const help = fromHelp((await runCli(['--help'])).stdout);
    expect(help.commands).toContain('update');
    expect(await complete('')).toEqual([...help.commands, ...help.flags.filter((f) => f.startsWith('--'))].sort());
  });

  it('offers every flag of each command’s --help', async () => {
    const commands = fromHelp((await runCli(['--help'])).stdout).commands.filter((c) => c !== 'help');
    for (const command of commands) {
      const help = fromHelp((await runCli([command, '--help'])).stdout);
      // the short -h of --help is left out (--help is offered)
      expect(await complete(command, '-'), command).toEqual([...new Set(help.flags.filter((f) => f !== '-h'))].sort());
    }
  });

  it('completes the values: channels, watchdog actions, files after --config, commands after help', async () => {
    expect(await complete('update', '--channel', '')).toEqual(['daily', 'stable']);
    expect(await complete('--config', '/etc/letto-update/x.toml', 'check', '--channel', 'd')).toEqual(['daily']);
    expect(await complete('watchdog', '')).toEqual(['pause', 'resume', 'run', 'status']);
    expect(await complete('watchdog', 'pause', '--')).toEqual(['--for', '--help', '--once', '--reason']);
    expect(await complete('--config', join(REPO_ROOT, 'contrib', 'bash-completion', 'letto-'))).toEqual([SCRIPT]);
    expect(await complete('help', 'st')).toEqual(['status']);
    expect(await complete('update', '--revision', '')).toEqual([]);
  });
});
