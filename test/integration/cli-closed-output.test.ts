/**
 * A reader that closes the pipe before the CLI writes (`letto-update --help | head -0`) must not turn
 * into a crash with an EPIPE stack trace: the output is dropped and the exit code is the command's own.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI_BIN } from '../support/cli.js';

describe('closed output', () => {
  it('--help into a pipe whose reader is already gone exits 0 without an EPIPE error', async () => {
    const child = spawn(process.execPath, [CLI_BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // our read end is closed before Node in the child has even started
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const exitCode = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(exitCode).toBe(0);
  });
});
