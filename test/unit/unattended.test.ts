/**
 * Small pure parts of unattended operation: durations, the command of an argv, which results are
 * notified, the mail subject, the tail of a large catalina.out, and that `update --random-delay`
 * sleeps before it takes the run lock or touches the network.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commandOf } from '../../src/cli.js';
import { configSchema } from '../../src/config/config.js';
import type { Context } from '../../src/context.js';
import { parseDurationSeconds } from '../../src/config/duration.js';
import { DownloadError } from '../../src/errors.js';
import { catalinaTail, shouldNotify, subjectOf } from '../../src/report/notify.js';
import { StateStore } from '../../src/store/state.js';
import type { HttpClient } from '../../src/system/http.js';
import { runUpdate } from '../../src/runbook/update.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'letto-unattended-unit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseDurationSeconds', () => {
  it.each([
    ['30m', 1800],
    ['1h30m', 5400],
    ['90s', 90],
    ['600', 600],
    ['1.5h', 5400],
    ['2 hours', 7200],
    ['0', 0],
  ])('%s is %i s', (text, seconds) => expect(parseDurationSeconds(text)).toBe(seconds));
  it.each(['', 'soon', '30x', '-5m', 'm'])('%j is not a duration', (text) => expect(parseDurationSeconds(text)).toBeNull());
});

describe('commandOf', () => {
  it('skips options and the value of --config', () => {
    expect(commandOf(['node', 'cli', '--config', 'health', 'health', '-w', '3'])).toBe('health');
    expect(commandOf(['node', 'cli', '--json', 'watchdog', '--once'])).toBe('watchdog');
    expect(commandOf(['node', 'cli', '--verbose'])).toBeUndefined();
  });
});

describe('shouldNotify', () => {
  const results = ['updated', 'current', 'skipped', 'busy', 'failed', 'rolled-back', 'rollback-failed', 'restarted', 'restart-failed'];
  it('change: updates, failures and watchdog restarts; error: failures and restarts; always: everything', () => {
    const told = (when: 'change' | 'error' | 'always') => results.filter((result) => shouldNotify(when, { result }));
    expect(told('change')).toEqual(['updated', 'failed', 'rolled-back', 'rollback-failed', 'restarted', 'restart-failed']);
    expect(told('error')).toEqual(['failed', 'rolled-back', 'rollback-failed', 'restarted', 'restart-failed']);
    expect(told('always')).toEqual(results);
  });
  it('the subject names host, command, both revisions and the result in ASCII', () => {
    expect(subjectOf({ command: 'update', result: 'updated', from: 6880, to: 6886, durationSeconds: 3, message: '' }, 'schule')).toBe(
      '[letto-update] schule: update 6880 -> 6886: updated',
    );
    expect(subjectOf({ command: 'rollback', result: 'updated', from: 6886, to: 6870, durationSeconds: 3, message: '' }, 'schule')).toBe(
      '[letto-update] schule: rollback 6886 -> 6870: done',
    );
    expect(subjectOf({ command: 'watchdog', result: 'restarted', from: 6886, to: 6886, durationSeconds: 3, message: '' }, 'schule')).toBe(
      '[letto-update] schule: watchdog revision 6886: TomEE restarted by the watchdog',
    );
  });
});

describe('catalinaTail', () => {
  it('reads only the end of a large file and drops the cut first line', async () => {
    const path = join(dir, 'catalina.out');
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${'x'.repeat(20)}`);
    await writeFile(path, lines.join('\n') + '\n');
    const tail = (await catalinaTail(path, 3)).split('\n');
    expect(tail).toEqual(lines.slice(-3));
  });
  it('says why when the file cannot be read', async () => {
    expect(await catalinaTail(join(dir, 'missing.out'))).toMatch(/^\(cannot read .*missing\.out: ENOENT/);
  });
});

describe('update --random-delay', () => {
  it('sleeps first, without the run lock and before any network request', async () => {
    const state = join(dir, 'state');
    const log: string[] = [];
    const http: HttpClient = {
      async getText(url) {
        log.push(`get ${url.split('/').pop()}`);
        throw new DownloadError('offline in this test');
      },
      getOptionalText: () => Promise.reject(new Error('not used')),
      download: () => Promise.reject(new Error('not used')),
      size: () => Promise.reject(new Error('offline in this test')),
      readRange: () => Promise.reject(new Error('not used')),
      readRanges: () => Promise.reject(new Error('not used')),
      probe: () => Promise.resolve({ ok: false, error: 'not used', ms: 0 }),
      close: () => Promise.resolve(),
    };
    const account = { name: 'test', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, home: dir };
    const ctx: Context = {
      config: configSchema.parse({ tomee: { webapps: join(dir, 'webapps') }, paths: { state, backup_lock: join(dir, 'lock') } }),
      services: {
        http,
        processes: { runScript: () => Promise.reject(new Error('not used')) },
        clock: {
          now: () => new Date(),
          async sleep(seconds) {
            log.push(`sleep ${seconds <= 1800 ? '≤ 1800' : seconds} lock ${existsSync(join(state, 'lock')) ? 'held' : 'free'}`);
          },
        },
      },
      serviceUser: account,
      state: new StateStore(state, account),
      emit: () => undefined,
    };
    await expect(runUpdate(ctx, { force: false, cron: true, randomDelaySeconds: 1800 })).rejects.toThrow('offline in this test');
    expect(log).toEqual(['sleep ≤ 1800 lock free', 'get stable-revision.txt']);
  });
});
