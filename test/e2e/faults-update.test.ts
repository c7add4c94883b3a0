/**
 * Fault injection, `update`: the built CLI against a real Tomcat is killed with SIGKILL right after
 * its journal recorded each step in turn (test hook LETTO_UPDATE_FAULT, see src/system/fault.ts).
 * After each kill: the webapps invariant holds, the journal names the step, and the next `update`
 * recovers first (says so, records it) and ends with LeTTo healthy on the revision it was asked for.
 * One Tomcat serves every case; each case starts from the state the previous one left.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startE2eLetto, type E2eLetto } from '../support/e2e-letto.js';
import { expectWebappsInvariant } from '../support/invariant.js';
import { describeWithTomcat } from '../support/tomcat.js';
import { readdir } from 'node:fs/promises';

/** The update steps the journal records, in runbook order (src/store/journal.ts). */
const POINTS = ['download', 'backup', 'backup-lock', 'stop', 'swap', 'swap:copied', 'swap:renamed', 'start', 'health', 'installed'] as const;
const KNOWN = [6870, 6880, 6886, 6890];

describeWithTomcat('update killed (SIGKILL) at each step; the next update recovers and finishes', () => {
  let letto: E2eLetto;

  beforeAll(async () => {
    letto = await startE2eLetto({ installed: 6880, downloads: { stable: 6886, daily: 6890, archive: [6870, 6880, 6886], brokenRevisions: [6890] } });
  }, 240_000);
  afterAll(async () => letto?.close());

  it.each(POINTS)('killed at "%s"', async (point) => {
    const from = (await letto.installed())!;
    const to = from === 6886 ? 6880 : 6886; // alternate, so every case installs something
    const killed = await letto.cli(['update', '--revision', String(to), '--yes'], { LETTO_UPDATE_FAULT: point });
    expect(killed.signal, killed.stdout + killed.stderr).toBe('SIGKILL');
    // the points inside the swap are not journal steps: the journal says `swap`
    expect(await letto.journal()).toMatchObject({ command: 'update', step: point.startsWith('swap') ? 'swap' : point, from, to });
    const left = await expectWebappsInvariant(letto.server.webapps, [from, to]);
    if (['download', 'backup', 'backup-lock', 'stop', 'swap', 'swap:copied'].includes(point)) expect(left).toBe(from);
    if (['swap:renamed', 'start', 'health', 'installed'].includes(point)) expect(left).toBe(to);
    if (point === 'swap:copied') expect(await readdir(letto.server.webapps)).toContain('.letto.war.letto-update.tmp');

    const status = await letto.cli(['--json', 'status']);
    expect(JSON.parse(status.stdout)).toMatchObject({ unfinished: expect.stringContaining(`interrupted at step "${point.split(':')[0]}"`) as string });

    const next = await letto.cli(['update', '--revision', String(to), '--yes']);
    expect(next.exitCode, next.stdout + next.stderr).toBe(0);
    expect(next.stderr).toMatch(/Recovered from an interrupted update/);
    await letto.expectSettledOn(to, KNOWN);
    const runs = await letto.runs();
    // killed at "health", TomEE was starting the new revision: recovery waits for it to answer and adopts it
    const kept = point === 'installed' || point === 'health';
    expect(runs.at(-2)).toMatchObject({ command: 'recover', result: 'recovered', from, to: kept ? to : from });
    if (kept) expect(runs.at(-1)).toMatchObject({ command: 'update', result: 'current' });
    else expect(runs.at(-1)).toMatchObject({ command: 'update', result: 'updated', from, to });
  }, 300_000);

  it('killed while putting the previous revision back after a failed health check ("undo"); recover brings it back', async () => {
    const from = (await letto.installed())!;
    // the daily revision 6890 fails its health check; a short timeout for this run only
    const killed = await letto.cli(['update', '--channel', 'daily', '--yes'], { LETTO_UPDATE_FAULT: 'undo', LETTO_UPDATE_TOMEE_HEALTH_TIMEOUT: '8' });
    expect(killed.signal, killed.stdout + killed.stderr).toBe('SIGKILL');
    expect(await letto.journal()).toMatchObject({ step: 'undo', from, to: 6890 });
    expect(await expectWebappsInvariant(letto.server.webapps, [from, 6890])).toBe(6890);

    const next = await letto.cli(['recover']);
    expect(next.exitCode, next.stdout + next.stderr).toBe(0);
    expect(next.stdout + next.stderr).toMatch(new RegExp(`revision ${from} was put back`));
    await letto.expectSettledOn(from, KNOWN);
    expect((await letto.runs()).at(-1)).toMatchObject({ command: 'recover', result: 'recovered', from, to: from });
  }, 300_000);

  it('recover with nothing to recover changes nothing (exit 0)', async () => {
    const r = await letto.cli(['recover']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/No interrupted run/);
  });
});
