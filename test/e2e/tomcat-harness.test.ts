/**
 * Proves the Tomcat harness (test/support/tomcat.ts): a real Tomcat laid out like a LeTTo server,
 * driven by LeTTo-style scripts as the service user.
 */
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildWar } from '../../fixtures/build-war.js';
import { createLettoServer, describeWithTomcat } from '../support/tomcat.js';
import type { LettoServer } from '../support/tomcat.js';

async function ownersUnder(dir: string): Promise<Array<{ path: string; uid: number; gid: number }>> {
  const result: Array<{ path: string; uid: number; gid: number }> = [];
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    result.push({ path: p, uid: st.uid, gid: st.gid });
    if (st.isDirectory()) for (const e of await readdir(p)) await walk(join(p, e));
  };
  for (const e of await readdir(dir)) await walk(join(dir, e));
  return result;
}

async function getText(url: string): Promise<{ status: number | undefined; body: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return { status: undefined, body: '' };
  }
}

describeWithTomcat('tomcat harness (real Tomcat laid out like a LeTTo server)', () => {
  let server: LettoServer;
  let work: string;
  let warFile: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'letto-harness-war-'));
    warFile = join(work, 'letto.war');
    await buildWar(warFile, { revision: 6886, healthy: true });
    server = await createLettoServer();
  }, 120_000);

  afterAll(async () => {
    if (server) {
      const out = await server.catalinaOut();
      if (process.env['LETTO_E2E_DEBUG'] === '1') console.log(out);
      await server.destroy();
    }
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('lays out /opt/tomee and /opt/letto under a temp root', async () => {
    expect(server.tomee).toBe(join(server.root, 'opt', 'tomee'));
    expect(server.webapps).toBe(join(server.tomee, 'webapps'));
    expect(server.letto).toBe(join(server.root, 'opt', 'letto'));
    expect(server.healthUrl).toBe(`http://127.0.0.1:${server.httpPort}/letto/test.jsf`);
    expect(server.httpPort).not.toBe(server.shutdownPort);
    expect(await readdir(server.webapps)).toEqual([]);
    const letto = await readdir(server.letto);
    for (const f of ['start.sh', 'stop.sh', 'restart.sh', 'status.sh', 'war', 'backup']) expect(letto).toContain(f);
    const tomeeBin = await readdir(join(server.tomee, 'bin'));
    for (const f of ['startup.sh', 'shutdown.sh', 'setenv.sh']) expect(tomeeBin).toContain(f);
    if (process.getuid?.() === 0) {
      expect(server.serviceUser.uid).not.toBe(0);
      const st = await lstat(join(server.root, 'opt'));
      expect(st.uid).toBe(server.serviceUser.uid);
    }
  });

  it('status.sh says not running (exit 3) before the first start', async () => {
    const r = await server.runScript('status.sh');
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toContain('TomEE is not running');
    expect(await server.isRunning()).toBe(false);
  });

  it('installs the WAR, starts, and answers 200 on the health URL', async () => {
    await server.installWar(warFile);
    const t0 = performance.now();
    await server.start();
    const tPort = performance.now();
    const healthy = await server.waitHealthy(90);
    const tHealthy = performance.now();
    console.log(
      `[tomcat-harness] start(): port open after ${Math.round(tPort - t0)} ms; ` +
        `letto.war healthy (200) after ${Math.round(tHealthy - t0)} ms`,
    );
    if (!healthy) console.error(await server.catalinaOut());
    expect(healthy).toBe(true);
    expect(await server.isRunning()).toBe(true);
  }, 120_000);

  it('status.sh prints the PID alone on a line and exits 0', async () => {
    const r = await server.runScript('status.sh');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n').map((l) => l.trim());
    const pidLine = lines.find((l) => /^\d+$/.test(l));
    expect(pidLine).toBeDefined();
    const pid = Number(pidLine);
    expect(() => process.kill(pid, 0)).not.toThrow();
  });

  it('restart.sh brings it back healthy', async () => {
    const before = await server.runScript('status.sh');
    const t0 = performance.now();
    const r = await server.runScript('restart.sh');
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(await server.waitHealthy(90)).toBe(true);
    console.log(`[tomcat-harness] restart.sh → healthy: ${Math.round(performance.now() - t0)} ms`);
    const after = await server.runScript('status.sh');
    expect(after.exitCode).toBe(0);
    expect(after.stdout.trim()).not.toBe(before.stdout.trim());
  }, 120_000);

  it('hot-redeploys a replaced letto.war (autoDeploy): broken → not 200, healthy again → 200', async () => {
    const broken = join(work, 'broken.war');
    const fixed = join(work, 'fixed.war');
    await buildWar(broken, { revision: 6887, healthy: false });
    await buildWar(fixed, { revision: 6888, healthy: true });

    const t0 = performance.now();
    await server.installWar(broken);
    const deadline = Date.now() + 60_000;
    let status = await getText(server.healthUrl);
    while (status.status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      status = await getText(server.healthUrl);
    }
    expect(status.status).not.toBe(200);
    console.log(`[tomcat-harness] hot swap to broken WAR → health not 200 after ${Math.round(performance.now() - t0)} ms`);

    const t1 = performance.now();
    await server.installWar(fixed);
    expect(await server.waitHealthy(60)).toBe(true);
    console.log(`[tomcat-harness] hot swap to healthy WAR → 200 after ${Math.round(performance.now() - t1)} ms`);
    expect((await getText(server.healthUrl)).body).toContain('6888');
  }, 150_000);

  it('stops: stop.sh returns only once the JVM is gone', async () => {
    const pid = Number((await server.runScript('status.sh')).stdout.trim());
    const t0 = performance.now();
    await server.stop();
    console.log(`[tomcat-harness] stop(): ${Math.round(performance.now() - t0)} ms`);
    expect(await server.isRunning()).toBe(false);
    expect(await server.waitHealthy(0)).toBe(false);
    // Gone for real, not a zombie: bin/startup.sh runs Tomcat under a reaper (PID 1 here may not reap).
    expect(() => process.kill(pid, 0)).toThrow();
  }, 120_000);

  it('status.sh says not running (exit 3) after stop; stop.sh again is a no-op', async () => {
    const r = await server.runScript('status.sh');
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toContain('TomEE is not running');
    const again = await server.runScript('stop.sh');
    expect(again.exitCode).toBe(0);
  });

  it('everything in webapps (WAR and exploded dir) is owned by the service user', async () => {
    const entries = await readdir(server.webapps);
    expect(entries).toContain('letto.war');
    expect(entries).toContain('letto');
    const owners = await ownersUnder(server.webapps);
    const wrong = owners.filter((o) => o.uid !== server.serviceUser.uid);
    expect(wrong).toEqual([]);
    expect((await server.catalinaOut()).length).toBeGreaterThan(0);
  });
});
