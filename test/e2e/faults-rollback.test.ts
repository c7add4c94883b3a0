/**
 * Fault injection, `rollback`: the built CLI against a real Tomcat is killed with SIGKILL right after
 * its journal recorded each step in turn (test hook LETTO_UPDATE_FAULT, see src/system/fault.ts).
 * After each kill: the webapps invariant holds, and the next run — `letto-update recover` here —
 * leaves LeTTo healthy on the known-good revision (the one from before the rollback), or on the
 * rollback's revision when the killed run had already passed its health check.
 * One Tomcat serves every case; the rollbacks take their WARs from local backups.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startE2eLetto, type E2eLetto } from '../support/e2e-letto.js';
import { expectWebappsInvariant } from '../support/invariant.js';
import { describeWithTomcat } from '../support/tomcat.js';

/** The rollback steps the journal records, in runbook order (src/store/journal.ts). */
const POINTS = ['download', 'backup', 'backup-lock', 'stop', 'swap', 'start', 'health', 'installed'] as const;
const KNOWN = [6880, 6886];

describeWithTomcat('rollback killed (SIGKILL) at each step; recover leaves LeTTo healthy', () => {
  let letto: E2eLetto;

  beforeAll(async () => {
    letto = await startE2eLetto({ installed: 6880, downloads: { stable: 6886, daily: 6886, archive: [6880, 6886] } });
    // an update first, so that both revisions have a local backup to roll back to
    const r = await letto.cli(['update', '--yes']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  }, 300_000);
  afterAll(async () => letto?.close());

  async function backupRevisions(): Promise<number[]> {
    const list = await letto.cli(['--json', 'list']);
    return (JSON.parse(list.stdout) as { backups: Array<{ revision: number }> }).backups.map((b) => b.revision);
  }

  it.each(POINTS)('killed at "%s"', async (point) => {
    const from = (await letto.installed())!;
    const to = from === 6886 ? 6880 : 6886;
    const backupsBefore = await backupRevisions();
    expect(backupsBefore).toContain(to);
    const killed = await letto.cli(['rollback', '--to', String(to), '--yes'], { LETTO_UPDATE_FAULT: point });
    expect(killed.signal, killed.stdout + killed.stderr).toBe('SIGKILL');
    expect(await letto.journal()).toMatchObject({ command: 'rollback', step: point, from, to });
    await expectWebappsInvariant(letto.server.webapps, [from, to]);

    const next = await letto.cli(['--json', 'recover']);
    expect(next.exitCode, next.stdout + next.stderr).toBe(0);
    // killed at "health", TomEE was starting `to`: recovery waits for it to answer and adopts it
    const intended = point === 'installed' || point === 'health' ? to : from;
    expect(JSON.parse(next.stdout)).toMatchObject({ command: 'recover', result: 'recovered', from, to: intended, exitCode: 0 });

    await letto.expectSettledOn(intended, KNOWN);
    const status = await letto.cli(['--json', 'status']);
    expect(JSON.parse(status.stdout)).toMatchObject({ installed: intended, healthy: true, unfinished: null });
    // no backup was lost
    expect(await backupRevisions()).toEqual(expect.arrayContaining(backupsBefore));
  }, 300_000);
});
