/**
 * The multi-school cases of the Docker end-to-end suite (test/support/docker-suite.ts runs them last,
 * on the images it published): all with compose v1; with compose v2 the core ones (status and dry run,
 * update and rollback, school b failing), since the rest exercise letto-update, not compose: a server laid out as LeTTo's docs describe
 * (test/support/docker-schools.ts: schools a, b, c and the LTI service, each file brought up with its
 * own `-f`, no docker-compose.yml, no COMPOSE_FILE). The suite's own install is taken down first (its
 * images share the prefix). Revisions: 100 (installed at the start), 101, 105 (school b's database
 * migration fails on it). Kills: `LETTO_DOCKER_SCHOOL_KILLS` (default 2), seeded.
 */
import { execa } from 'execa';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { killAfter, runCli, type CliResult } from './cli.js';
import { readJsonLines, type ComposeCli, type TestRegistry } from './docker.js';
import { bringUpSchools, revisionImageIds, schoolContainers, SCHOOLS, writeSchoolsServer, type SchoolsServer } from './docker-schools.js';
import { prng, testSeed } from './seeded.js';

/** Kills of the multi-school random-moment kill case (`LETTO_DOCKER_SCHOOL_KILLS`, default 2; each about a minute). */
const SCHOOL_KILLS = Number(process.env.LETTO_DOCKER_SCHOOL_KILLS ?? 2);

/** What the cases need of the suite (getters: the suite sets them up in its beforeAll). */
export interface SchoolsSuiteEnv {
  /** Registers a case; `core` cases run with compose v2 too, the others with v1 only (as the suite's own). */
  test: (name: string, core: boolean, fn: () => Promise<void>, timeoutMs?: number) => void;
  root: () => string;
  id: string;
  prefix: string;
  registry: () => TestRegistry;
  compose: () => ComposeCli;
  /** The suite's config file: the schools' config is made from it. */
  config: () => string;
  /** The suite's own install's compose folders (taken down first). */
  suiteDirs: () => string[];
  notices: () => Array<{ result: string; message: string; logTail: { source: string; text: string } | null }>;
}

/** Registers the multi-school cases. @returns what removes the server (for the suite's afterAll). */
export function schoolsCases(env: SchoolsSuiteEnv): () => Promise<void> {
  let server: SchoolsServer | null = null;
  let config: string;
  let state: string;
  const cli = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> =>
    runCli(['--config', config, ...args], { env: { DOCKER_CONFIG: env.registry().dockerConfig, ...extra }, timeoutMs: 540_000 });
  const compose = (dir: string, args: string[]) => execa(env.compose().command, [...env.compose().args, ...args], { cwd: dir, env: env.compose().env });
  const imageIdsNow = async () => Object.fromEntries(Object.entries(await schoolContainers(server!)).map(([service, c]) => [service, c.imageId]));

  /** Every LeTTo container on `revision`'s image (by id), running and healthy, each school's URL answering with it. */
  async function expectAllOn(revision: number, except: string[] = []): Promise<void> {
    for (let i = 0; i < 60 && Object.values(await schoolContainers(server!)).some((c) => c.state === 'running' && c.health !== 'healthy'); i++) await new Promise((r) => setTimeout(r, 1000));
    const want = await revisionImageIds(env.prefix, env.registry(), revision);
    const now = await schoolContainers(server!);
    for (const [service, id] of Object.entries(want)) {
      if (except.includes(service)) continue;
      expect(now[service], service).toMatchObject({ imageId: id, state: 'running', health: 'healthy' });
    }
    for (const school of SCHOOLS) {
      if (except.includes(`lettoserver-${school}`)) continue;
      const page = await fetch(server!.schoolUrl(school));
      expect(await page.text(), `school ${school}`).toContain(`LeTTo revision ${revision}, lettoserver`);
    }
    await expect(stat(join(state, 'journal.json'))).rejects.toThrow();
  }

  env.test('schools: status and the dry run of a server with three schools and the LTI service, each compose file brought up with its own -f', true, async () => {
    for (const dir of env.suiteDirs()) await compose(dir, ['down', '--timeout', '1']);
    server = await writeSchoolsServer(join(env.root(), 'schools'), `${env.id}-s`, env.prefix, { b: 105 });
    await bringUpSchools(server, env.prefix, `${env.id}-s`, env.registry(), 100, env.compose());
    state = join(server!.root, 'state');
    config = join(server!.root, 'config.toml');
    const text = (await readFile(env.config(), 'utf8'))
      .replace(/^state = .*$/m, `state = "${state}"`)
      .replace(/^compose_dirs = .*$/m, `compose_dirs = ["${server!.dirs.setup}", "${server!.dirs.mysql}", "${server!.dirs.letto}"]`)
      .replace(/^health_url = .*$/m, `health_url = ["${server!.healthUrl}"]`);
    await writeFile(config, text);
    await expectAllOn(100);
    const status = await cli(['--json', 'status']);
    expect(status.exitCode, status.stdout + status.stderr).toBe(0);
    const report = JSON.parse(status.stdout) as { installed: number; mixed: boolean; healthy: boolean; health: string; services: Array<{ name: string; school?: string; revision: number }> };
    expect(report).toMatchObject({ installed: 100, mixed: false, healthy: true });
    // each school's own URL asked (health_url names {school}), each named in the health line
    expect(report.health).toMatch(/^school a: HTTP 200 in \d+ ms; school b: HTTP 200 in \d+ ms; school c: HTTP 200 in \d+ ms$/);
    expect(report.services.filter((s) => s.school).map((s) => `${s.school} ${s.name} ${s.revision}`).sort()).toEqual(SCHOOLS.map((s) => `${s} ${env.id}-s-letto/lettoserver-${s} 100`));
    expect((await cli(['status'])).stdout).toContain(`school b: ${env.id}-s-letto/lettoserver-b  ${env.prefix}lettoserver:stable  revision 100  running (healthy)`);
    expect(report.services).toHaveLength(5);
    const plan = await cli(['update', '--dry-run', '--revision', '101']);
    expect(plan.exitCode, plan.stdout + plan.stderr).toBe(0);
    for (const school of SCHOOLS) expect(plan.stdout).toContain(`-f ${server!.file(school)} --project-directory ${server!.dirs.letto} up -d --no-build\``);
    expect(plan.stdout).toContain(`-f ${server!.file('lti')} --project-directory ${server!.dirs.letto} up -d --no-build\``);
    expect(plan.stdout).toMatch(/5 LeTTo containers run healthy \(3 schools: a, b, c\)/);
    expect(plan.stdout).not.toContain('remove-orphans');
  });

  env.test('schools: update moves every school and the LTI service (image ids), each school answers the new revision; rollback moves all back', true, async () => {
    const run = await cli(['update', '--revision', '101', '--yes']);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(run.stdout + run.stderr).not.toMatch(/remove-orphans/);
    await expectAllOn(101);
    expect((await readJsonLines(join(state, 'runs.jsonl'))).at(-1)).toMatchObject({ command: 'update', to: 101, result: 'updated', message: expect.stringContaining('(3 schools: a, b, c)') });
    const back = await cli(['rollback', '--yes']);
    expect(back.exitCode, back.stdout + back.stderr).toBe(0);
    await expectAllOn(100);
  });

  env.test('schools: school b fails on the new revision: exit 3, every school and the LTI service back on their old images, the notice names school b', true, async () => {
    const before = await imageIdsNow();
    const run = await cli(['update', '--revision', '105', '--yes']);
    expect(run.exitCode, run.stdout + run.stderr).toBe(3);
    expect(run.stderr).toMatch(/school b/);
    expect(await imageIdsNow()).toEqual(before);
    await expectAllOn(100);
    const notice = env.notices().at(-1)!;
    expect(notice.result).toBe('rolled-back');
    expect(notice.message).toMatch(/school b/);
    expect(notice.logTail!.source).toMatch(/of lettoserver-b \(school b\)/);
    expect(notice.logTail!.text).toContain('ERROR: school b: the database migration to revision 105 failed');
  });

  env.test('schools: a school the admin stopped stays stopped, and runs the new revision when started again', false, async () => {
    await compose(server!.dirs.letto, ['-f', 'docker-compose-c.yml', 'stop', '--timeout', '1']);
    const stoppedOn = (await schoolContainers(server!))['lettoserver-c']!.imageId;
    const run = await cli(['update', '--revision', '101', '--yes']);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect((await schoolContainers(server!))['lettoserver-c']).toMatchObject({ state: 'exited', imageId: stoppedOn });
    await expectAllOn(101, ['lettoserver-c']);
    await compose(server!.dirs.letto, ['-f', 'docker-compose-c.yml', 'up', '-d']);
    await expectAllOn(101);
  });

  env.test('schools: a school whose compose file was deleted, and a LeTTo container started with docker run, are refused and nothing changes', false, async () => {
    const before = await imageIdsNow();
    const file = server!.file('b');
    await rename(file, `${file}.away`);
    try {
      const run = await cli(['update', '--revision', '100', '--yes']);
      expect(run.exitCode, run.stdout + run.stderr).toBe(1);
      expect(run.stderr).toContain(`The LeTTo container ${(await schoolContainers(server!))['lettoserver-b']!.name} was brought up with ${file}, which is gone`);
      expect(await imageIdsNow()).toEqual(before);
    } finally {
      await rename(`${file}.away`, file);
    }
    const handmade = `${env.id}-s-handmade`;
    await execa('docker', ['run', '-d', '--name', handmade, `${env.prefix}lettoserver:stable`]);
    try {
      const run = await cli(['update', '--revision', '100', '--yes']);
      expect(run.exitCode, run.stdout + run.stderr).toBe(1);
      expect(run.stderr).toContain(`The LeTTo container ${handmade} (${env.prefix}lettoserver:stable) was started without compose`);
      expect(await imageIdsNow()).toEqual(before);
      // stopped, it is left alone (and said so): the update goes ahead without it
      await execa('docker', ['stop', '--time', '1', handmade]);
      const id = (await execa('docker', ['inspect', '--format', '{{.Image}}', handmade])).stdout.trim();
      const next = await cli(['update', '--revision', '100', '--yes']);
      expect(next.exitCode, next.stdout + next.stderr).toBe(0);
      expect(next.stdout + next.stderr).toContain(`Left alone (started without compose, stopped): ${handmade}`);
      expect((await execa('docker', ['inspect', '--format', '{{.Image}} {{.State.Status}}', handmade])).stdout.trim()).toBe(`${id} exited`);
      await expectAllOn(100);
    } finally {
      await execa('docker', ['rm', '-f', handmade], { reject: false });
    }
  });

  env.test('schools: kill -9 at random moments (seeded) of multi-school updates; the admin re-runs at once and every school ends on one revision, healthy', false, async () => {
    const random = prng(testSeed('docker school kills'));
    const targets = [101, 100];
    for (let n = 0; n < SCHOOL_KILLS; n++) {
      const target = targets[n % targets.length]!;
      const group = random() < 0.5;
      const delayMs = Math.round(random() * 25_000);
      const killed = await killAfter(['--config', config, 'update', '--revision', String(target), '--yes'], { env: { DOCKER_CONFIG: env.registry().dockerConfig }, timeoutMs: 540_000 }, { delayMs, group });
      const context = `school kill ${n + 1}: update to ${target}, ${killed.context}`;
      const next = await cli(['update', '--revision', String(target), '--yes']);
      console.log(`${context}; the next run: ${(next.stdout + next.stderr).split('\n').filter((l) => /still runs|Recovered/.test(l)).join(' ') || 'nothing to recover'}`);
      expect(next.exitCode, `${context}\n${next.stdout}${next.stderr}`).toBe(0);
      await expectAllOn(target);
    }
  }, Math.max(600_000, SCHOOL_KILLS * 150_000));

  return async () => {
    if (!server) return;
    await server!.close();
    const all = [...SCHOOLS.map((s) => server!.file(s)), server!.file('lti')].flatMap((f) => ['-f', f]);
    await compose(server!.dirs.letto, [...all, 'down', '--timeout', '1']).catch(() => undefined);
    for (const dir of [server!.dirs.setup, server!.dirs.mysql]) await compose(dir, ['down', '--timeout', '1']).catch(() => undefined);
    await execa('docker', ['rmi', '--force', `${env.id}-s-mysql:8`], { reject: false });
    await rm(server!.root, { recursive: true, force: true });
  };
}
