/**
 * End to end, a Docker install: the built CLI against the real engine, a real registry on loopback
 * (TLS + htpasswd), real compose and LeTTo-like images built here (see test/support/docker.ts). Two
 * compose folders (setup; letto with lettoserver and a login service via COMPOSE_FILE in .env).
 * Revisions in the registry: 100 (installed at the start), 101, 102 (lettoserver broken), 103 (login
 * service broken), 104 (login image missing), 105. The cases run in order, each from the state the
 * previous one left. Run by test/e2e/docker.test.ts with compose v1 (Debian's docker-compose 1.29,
 * every case) and by test/e2e/docker-compose-v2.test.ts with compose v2 (`docker compose`, the core
 * cases: dry run, update, a failed health check rolled back, kill -9 and recovery; and v2 installed as
 * `docker-compose`). Kills: at journal steps, while a slowed compose runs, and at random moments
 * (seeded, `LETTO_DOCKER_KILLS`).
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killAfter, outputUntil, runCli, spawnCli, type CliResult } from './cli.js';
import {
  addComposePlugin,
  COMPOSE_V1,
  COMPOSE_V2_WHERE,
  composeV2,
  composeV2Plugin,
  containerIds,
  containers,
  installRevision,
  publishRevision,
  readJsonLines,
  removeInstall,
  runningRevisions,
  startRegistry,
  writeComposeInstall,
  type ComposeCli,
  type ComposeInstall,
  type TestRegistry,
  suiteId,
} from './docker.js';
import { describeWithDocker } from './describe-docker.js';
import { startDownloadServer, writeServerSection, type DownloadServer } from './download-server.js';
import { schoolsCases } from './docker-schools-suite.js';
import { prng, testSeed } from './seeded.js';
import { startWebhook, type WebhookReceiver } from './webhook.js';
import { prometheusMissing, promtool } from './prometheus.js';

/** A failure notice as the webhook receives it (the fields these tests look at). */
type Notice = { result: string; logTail: { source: string; text: string } | null };

/** Per case: a few CLI runs, each bringing containers up (docker-compose v1 costs ~1 s a call on a loaded machine). */
const TIMEOUT = 600_000;
/** Kills of the random-moment kill case (`LETTO_DOCKER_KILLS`, default 3; each costs about a minute). */
const DOCKER_KILLS = Number(process.env.LETTO_DOCKER_KILLS ?? 3);

/** Which compose runs the install; `core`: only the core cases (those marked `true`). */
export interface DockerSuiteOptions {
  compose: 'v1' | 'v2';
  core: boolean;
}

/** The Docker end-to-end suite with compose `opts.compose` (skipped loudly, or failing under LETTO_E2E_REQUIRED=1, when it cannot run). */
export function dockerSuite(opts: DockerSuiteOptions): void {
  const v2 = opts.compose === 'v2';
  const plugin = v2 ? composeV2Plugin() : null;
  const missing = v2 && !plugin ? `compose v2 not found (${COMPOSE_V2_WHERE}; .ci/run fetches it with fixtures/compose-v2.sh)` : null;
  /** A case of the full suite; `core` cases run with compose v2 too. */
  const test = (name: string, core: boolean, fn: () => Promise<void>, timeoutMs = TIMEOUT) => (core || !opts.core ? it(name, fn, timeoutMs) : undefined);
  describeWithDocker(`Docker install (compose ${opts.compose}): update, health check, rollback on every service, recovery`, () => {
    const id = suiteId();
    const prefix = `${id}/`;
    let root: string;
    let registry: TestRegistry | null = null;
    let install: ComposeInstall | null = null;
    let download: DownloadServer | null = null;
    let config: string;
    let state: string;
    let backupLock: string;
    /** The failure notices (`[notify] webhook_url`, when = "error"), as posted. */
    let webhook: WebhookReceiver<Notice> | null = null;
    const notices = (): Notice[] => webhook!.received.map((post) => post.body);
    /** How the admin runs compose here (and the tests, by hand). */
    let compose: ComposeCli = COMPOSE_V1;

    const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
      runCli(['--config', config, ...args], { env: { DOCKER_CONFIG: registry!.dockerConfig, ...env }, timeoutMs: 540_000 });
    const setStable = (revision: number) => writeFile(join(root, 'download', 'stable-revision.txt'), `${revision}\r\n`);
    const imageIds = async () => Object.fromEntries((await containers(install!)).map((c) => [c.service, c.imageId]));

    /** Every LeTTo container runs `revision` (no mix), healthy; LeTTo answers with it; no journal, no backup lock. */
    async function expectAllOn(revision: number): Promise<void> {
      expect(await runningRevisions(install!)).toEqual({ 'letto-setup': revision, lettoserver: revision, 'letto-service-login': revision });
      for (const c of await containers(install!)) expect(c, c.service).toMatchObject({ state: 'running' });
      const page = await fetch(install!.healthUrl);
      expect(await page.text()).toContain(`LeTTo revision ${revision}`);
      await expect(stat(join(state, 'journal.json'))).rejects.toThrow();
      await expect(stat(backupLock)).rejects.toThrow();
    }

    /** Waits (up to 60 s) until every LeTTo container is healthy again, then {@link expectAllOn}. */
    async function expectAllOnSoon(revision: number): Promise<void> {
      for (let i = 0; i < 60 && (await containers(install!)).some((c) => c.health !== 'healthy'); i++) await new Promise((r) => setTimeout(r, 1000));
      await expectAllOn(revision);
    }

    /** Containers (id, image id, state) and images (id and name) of this suite: what a dry run must leave as it was. */
    async function engineSnapshot(): Promise<{ containers: string; images: string[] }> {
      const ids: string[] = [];
      for (const project of install!.projects) ids.push(...(await execa('docker', ['ps', '-a', '-q', '--no-trunc', '--filter', `label=com.docker.compose.project=${project}`])).stdout.split(/\s+/).filter(Boolean));
      const inspected = (await execa('docker', ['container', 'inspect', '--format', '{{.Id}} {{.Image}} {{.State.Status}} {{.State.StartedAt}}', ...ids])).stdout;
      const images = (await execa('docker', ['image', 'ls', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter((l) => l.includes(prefix));
      return { containers: inspected.split('\n').sort().join('\n'), images: images.sort() };
    }

    /** The table `update --dry-run` prints: check name → its line after the name (`ok    …`). */
    function planTable(stdout: string): Map<string, string> {
      const table = new Map<string, string>();
      for (const line of stdout.split('\n')) {
        const m = /^ {2}(ok|warn|FAIL|skip) +(\S.*?)  +(\S.*)$/.exec(line);
        if (m) table.set(m[2]!, `${m[1]} ${m[3]}`);
      }
      return table;
    }

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'lu-docker-'));
      registry = await startRegistry(root);
      if (plugin) {
        // `docker compose` finds the v2 plugin in $DOCKER_CONFIG/cli-plugins: for the tests, the CLI under test and the admin's own calls
        for (const dir of [registry.dockerConfig, registry.wrongDockerConfig]) await addComposePlugin(dir, plugin);
      }
      compose = plugin ? composeV2(registry.dockerConfig) : COMPOSE_V1;
      await publishRevision(root, prefix, registry, 100);
      await publishRevision(root, prefix, registry, 101);
      await publishRevision(root, prefix, registry, 102, { broken: ['lettoserver'] });
      if (!opts.core) await publishRevision(root, prefix, registry, 103, { broken: ['letto-service-login'] });
      await publishRevision(root, prefix, registry, 104, { skip: ['letto-service-login'] });
      await publishRevision(root, prefix, registry, 105);
      install = await writeComposeInstall(root, id, prefix);
      await installRevision(install, prefix, registry, 100, compose);
      await mkdir(join(root, 'download'), { recursive: true });
      await setStable(100);
      await writeFile(join(root, 'download', 'daily-revision.txt'), '105\r\n');
      webhook = await startWebhook<Notice>();
      download = await startDownloadServer({ root: join(root, 'download'), tls: true, user: 'letto', password: 'dl-Pässword-3' });
      const etc = join(root, 'etc');
      const serverSection = await writeServerSection(etc, download, 'dl-Pässword-3');
      state = join(root, 'state');
      backupLock = join(root, 'sicherung', 'sqlsicherungaktiv');
      await mkdir(join(root, 'sicherung'), { recursive: true });
      config = join(etc, 'config.toml');
      await writeFile(
        config,
        `${serverSection}
[paths]
state = "${state}"
backup_lock = "${backupLock}"
keep = 2

[docker]
compose_dirs = ["${install.dirs[0]}", "${install.dirs[1]}"]
image_prefix = "${prefix}"
registry = "${registry.host}"
health_url = "${install.healthUrl}"
health_timeout = 30
${v2 ? '# compose: found (`docker compose`, the v2 plugin in DOCKER_CONFIG)' : 'compose = "docker-compose"'}

[watchdog]
failures = 1

[notify]
webhook_url = "${webhook.url}"
when = "error"
`,
      );
    }, 300_000);

    afterAll(async () => {
      await closeSchools();
      await download?.close();
      await webhook?.close();
      await removeInstall(install, prefix, registry?.host ?? null, compose);
      await registry?.close();
      if (root) await rm(root, { recursive: true, force: true });
    }, 120_000);

    test('status names each service and its revision; update --cron is silent when there is nothing to do', true, async () => {
      const status = await cli(['--json', 'status']);
      expect(status.exitCode, status.stderr).toBe(0);
      const report = JSON.parse(status.stdout) as { kind: string; installed: number; mixed: boolean; services: Array<{ revision: number }> };
      expect(report).toMatchObject({ kind: 'docker', installed: 100, mixed: false });
      expect(report.services.map((s) => s.revision)).toEqual([100, 100, 100]);
      // issue 22: `metrics` gives each service's revision, and promtool accepts it
      const metrics = await cli(['metrics']);
      expect(metrics.exitCode, metrics.stderr).toBe(0);
      expect(metrics.stdout.match(/^letto_update_service_revision\{project="[^"]+",service="[^"]+"\} 100$/gm)).toHaveLength(3);
      expect(metrics.stdout).toMatch(/^letto_update_info\{kind="docker",/m);
      if (!prometheusMissing()) expect(await promtool(['check', 'metrics'], metrics.stdout)).toEqual({ code: 0, output: '' });
      const cron = await cli(['update', '--cron']);
      expect(cron.exitCode, cron.stderr).toBe(0);
      expect(cron.stdout + cron.stderr).toBe('');
    });

    test('update --dry-run says what the update would do (images, folders, tags) and changes nothing', true, async () => {
      await setStable(101);
      const before = await engineSnapshot();
      const runsBefore = await readJsonLines(join(state, 'runs.jsonl'));
      const plan = await cli(['update', '--dry-run']);
      expect(plan.exitCode, plan.stdout + plan.stderr).toBe(0);
      expect(plan.stdout).toContain('Dry run: would update LeTTo from revision 100 to 101 (stable channel); every LeTTo container will be recreated.');
      const table = planTable(plan.stdout);
      // the images of a folder in the order compose config lists its services
      const names = [...table.keys()];
      expect(names.filter((n) => !n.startsWith('image '))).toEqual(['run lock', 'backup lock', 'interrupted run', 'docker engine', 'compose folders', 'revisions', 'state folder', 'database dump', 'tags', 'bring up', 'health check']);
      expect(names.slice(7, 10).sort()).toEqual(['image letto-service-login', 'image letto-setup', 'image lettoserver']);
      for (const [name, line] of table) if (name !== 'database dump') expect(line, name).toMatch(/^ok /);
      // no [database] section: said once, so that admins learn that it exists
      expect(table.get('database dump')).toMatch(/^warn not dumped before updates: the config has no \[database\] section/);
      expect(table.get('docker engine')).toMatch(v2 ? /Docker \S+ answers; compose: docker compose 2\./ : /Docker \S+ answers; compose: docker-compose 1\./);
      const [setup, letto] = install!.dirs;
      // each compose call as compose recorded it on the containers: -p, each -f, the project folder (COMPOSE_FILE came from .env)
      const program = v2 ? 'docker compose' : 'docker-compose';
      expect(table.get('bring up')).toContain(`1. \`${program} -p ${install!.projects[0]} -f ${setup}/docker-compose.yml --project-directory ${setup} up -d --no-build\` in ${setup}, `);
      expect(table.get('bring up')).toContain(`2. \`${program} -p ${install!.projects[1]} -f ${letto}/docker-compose.yml -f ${letto}/docker-service-login.yml --project-directory ${letto} up -d --no-build\` in ${letto}; `);
      expect(table.get('compose folders')).toContain(`1. docker-compose.yml in ${setup} (project ${install!.projects[0]}): letto-setup; 2. docker-compose.yml + docker-service-login.yml in ${letto} (project ${install!.projects[1]}): `);
      expect(table.get('compose folders')).toMatch(/: (lettoserver, letto-service-login|letto-service-login, lettoserver)$/);
      expect(table.get('image lettoserver')).toContain(`would pull ${registry!.host}/${prefix}lettoserver:rev101 for lettoserver (${prefix}lettoserver:stable)`);
      expect(table.get('tags')).toMatch(new RegExp(`would point ${prefix}\\S+:stable, ${prefix}\\S+:stable, ${prefix}\\S+:stable at their rev101 images; the images running now \\([0-9a-f]{12}, [0-9a-f]{12}, [0-9a-f]{12}\\) keep the tag rev100`));
      expect(table.get('health check')).toMatch(/3 LeTTo containers run healthy; http:\S+: HTTP 200/);
      expect(plan.stdout).toContain('The update would go ahead');
      // --json carries the same plan; a revision with a missing image and a registry refusing the credentials fail their checks
      const json = JSON.parse((await cli(['--json', 'update', '--dry-run'])).stdout) as { action: string; to: number; goAhead: boolean; checks: Array<{ name: string }> };
      expect(json).toMatchObject({ action: 'install', to: 101, goAhead: true });
      expect(json.checks.map((c) => c.name)).toEqual([...table.keys()]);
      const missing = await cli(['update', '--dry-run', '--revision', '104']);
      expect(missing.exitCode, missing.stdout + missing.stderr).toBe(1);
      expect(planTable(missing.stdout).get('image letto-service-login')).toMatch(new RegExp(`^FAIL .*${prefix}letto-service-login:rev104 \\(for letto-service-login\\) is not in ${registry!.host}: the update would refuse revision 104`));
      expect(planTable(missing.stdout).get('image lettoserver')).toMatch(/^ok /);
      const refused = await cli(['update', '--dry-run'], { DOCKER_CONFIG: registry!.wrongDockerConfig });
      expect(refused.exitCode).toBe(1);
      expect(planTable(refused.stdout).get('image lettoserver')).toMatch(/^FAIL .*refused the credentials/);
      expect(refused.stderr).toMatch(/docker login/);
      expect(refused.stdout + refused.stderr).not.toContain(registry!.password);
      // nothing changed: the same containers on the same images, no image pulled or tagged, no journal, no run recorded
      expect(await engineSnapshot()).toEqual(before);
      await expectAllOn(100);
      expect(await readJsonLines(join(state, 'runs.jsonl'))).toEqual(runsBefore);
    });

    test('the backup lock: update refuses (75) and changes nothing', false, async () => {
      await setStable(101);
      const before = await imageIds();
      await writeFile(backupLock, 'backup running\n');
      try {
        const run = await cli(['update', '--yes']);
        expect(run.exitCode, run.stdout + run.stderr).toBe(75);
        expect(run.stderr).toMatch(/backup is running/);
        expect(await imageIds()).toEqual(before);
      } finally {
        await rm(backupLock, { force: true });
      }
    });

    if (v2) {
      test('compose v2 installed as `docker-compose` (no docker plugin): found and used; status and the dry run work', true, async () => {
        // a DOCKER_CONFIG logged in to the registry but without cli-plugins, and the v2 binary first on PATH as docker-compose
        const bin = join(root, 'v2-as-docker-compose', 'bin');
        const dockerConfig = join(root, 'v2-as-docker-compose', 'docker-config');
        await mkdir(bin, { recursive: true });
        await mkdir(dockerConfig, { recursive: true });
        await symlink(plugin!, join(bin, 'docker-compose'));
        await copyFile(join(registry!.dockerConfig, 'config.json'), join(dockerConfig, 'config.json'));
        const env = { DOCKER_CONFIG: dockerConfig, PATH: `${bin}:${process.env.PATH ?? ''}` };
        const status = await cli(['--json', 'status'], env);
        expect(status.exitCode, status.stdout + status.stderr).toBe(0);
        expect(JSON.parse(status.stdout)).toMatchObject({ installed: 100, healthy: true });
        const plan = await cli(['update', '--dry-run', '--revision', '101'], env);
        expect(plan.exitCode, plan.stdout + plan.stderr).toBe(0);
        expect(planTable(plan.stdout).get('docker engine')).toMatch(/compose: docker-compose 2\./);
        await expectAllOn(100);
      });
    }

    test('a registry that refuses the credentials: exit 1, nothing changed, the hint names docker login', false, async () => {
      const before = await imageIds();
      const run = await cli(['update', '--yes'], { DOCKER_CONFIG: registry!.wrongDockerConfig });
      expect(run.exitCode, run.stdout + run.stderr).toBe(1);
      expect(run.stderr).toMatch(/could not be pulled/);
      expect(run.stderr).toMatch(/docker login/);
      expect(run.stderr + run.stdout).not.toContain(registry!.password);
      expect(await imageIds()).toEqual(before);
      await expectAllOn(100);
    });

    test('a revision whose image is missing for one service is refused before anything changes', false, async () => {
      const before = await imageIds();
      const run = await cli(['update', '--revision', '104', '--yes']);
      expect(run.exitCode, run.stdout + run.stderr).toBe(1);
      expect(run.stderr).toContain(`${prefix}letto-service-login:rev104`);
      expect(await imageIds()).toEqual(before);
      await expectAllOn(100);
    });

    test('update pulls every image and brings every service to the new revision', true, async () => {
      const run = await cli(['update', '--yes']);
      expect(run.exitCode, run.stdout + run.stderr).toBe(0);
      await expectAllOn(101);
      const status = JSON.parse((await cli(['--json', 'status'])).stdout) as { installed: number; healthy: boolean };
      expect(status).toMatchObject({ installed: 101, healthy: true });
      // a plain `docker-compose up -d` (v2: `docker compose up -d`) by the admin runs the same revision: the compose tag points at it
      await execa(compose.command, [...compose.args, 'up', '-d'], { cwd: install!.dirs[1]!, env: compose.env });
      await expectAllOn(101);
      // revision 100's images keep the revision tag they were pulled with (<registry>/<name>:rev100), and get
      // no short <name>:rev100 that would look as if it came from Docker Hub (issue 23, item 10)
      const tags = (await execa('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n');
      expect(tags.filter((t) => t.startsWith(prefix) && /:rev\d+$/.test(t))).toEqual([]);
      for (const image of ['letto-setup', 'lettoserver', 'letto-service-login']) expect(tags).toContain(`${registry!.host}/${prefix}${image}:rev100`);
    });

    test('lettoserver fails its health check: every service goes back to the images it ran (exit 3, no mix)', true, async () => {
      const before = await imageIds();
      const run = await cli(['update', '--revision', '102', '--yes']);
      expect(run.exitCode, run.stdout + run.stderr).toBe(3);
      // it stopped as soon as lettoserver reported unhealthy: the message says so, not a time-out that did not pass (issue 23, item 9)
      expect(run.stderr).toMatch(/Revision 102 did not become healthy: container \S*lettoserver\S* reported unhealthy after \d+ s\./);
      expect(run.stderr).not.toMatch(/within 30 s/);
      expect(await imageIds()).toEqual(before);
      await expectAllOn(101);
      const last = (await readJsonLines(join(state, 'runs.jsonl'))).at(-1);
      expect(last).toMatchObject({ command: 'update', from: 101, to: 102, result: 'rolled-back' });
      // the failure notice carries the failed service's `docker logs` (read before the undo removed its container), without the password
      const notice = notices().at(-1)!;
      expect(notice.result).toBe('rolled-back');
      expect(notice.logTail!.source).toMatch(/^`docker logs --tail 40` of lettoserver \(container \S+ is unhealthy\)$/);
      expect(notice.logTail!.text).toContain('LeTTo lettoserver revision 102 starting, database letto:********@db');
      expect(notice.logTail!.text).toContain('ERROR: lettoserver revision 102 failed to start');
      expect(JSON.stringify(notices())).not.toContain(install!.dbPassword);
    });

    test('only the login service fails: every service goes back, lettoserver too (exit 3, no mix)', false, async () => {
      const before = await imageIds();
      const run = await cli(['update', '--revision', '103', '--yes']);
      expect(run.exitCode, run.stdout + run.stderr).toBe(3);
      expect(run.stderr).toMatch(/unhealthy/);
      expect(await imageIds()).toEqual(before);
      await expectAllOn(101);
      expect(notices().at(-1)!.logTail!.source).toMatch(/of letto-service-login \(/);
      expect(notices().at(-1)!.logTail!.text).toContain('ERROR: letto-service-login revision 103 failed to start');
    });

    test('kill -9 while undoing a failed update: the next run (recover) puts every service back', true, async () => {
      const before = await imageIds();
      const killed = await cli(['update', '--revision', '102', '--yes'], { LETTO_UPDATE_FAULT: 'undo' });
      expect(killed.signal, killed.stdout + killed.stderr).toBe('SIGKILL');
      const recover = await cli(['recover']);
      expect(recover.exitCode, recover.stdout + recover.stderr).toBe(0);
      expect(recover.stdout).toMatch(/undone/);
      expect(await imageIds()).toEqual(before);
      await expectAllOn(101);
    });

    test('the nightly run finds an interrupted update whose previous images do not come up: exit 4, a rollback-failed notice with their docker logs, the journal kept; a repair by hand is then adopted, not undone', false, async () => {
      const before = await imageIds();
      const killed = await cli(['update', '--revision', '102', '--yes'], { LETTO_UPDATE_FAULT: 'undo' });
      expect(killed.signal, killed.stdout + killed.stderr).toBe('SIGKILL');
      const journalPath = join(state, 'journal.json');
      const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { previousImages: unknown; targetImages: unknown };
      // as if the images it ran before were broken too: recovery brings back revision 102's, which fail
      await writeFile(journalPath, JSON.stringify({ ...journal, previousImages: journal.targetImages }));
      const sent = notices().length;
      const next = await cli(['update', '--cron']);
      expect(next.exitCode, next.stdout + next.stderr).toBe(4);
      expect(next.stderr).toMatch(/Recovering from the interrupted update failed: .* LeTTo may be down/);
      expect(notices()).toHaveLength(sent + 1);
      const notice = notices().at(-1)!;
      expect(notice.result).toBe('rollback-failed');
      expect(notice.logTail!.source).toMatch(/^`docker logs --tail 40` of lettoserver \(/);
      expect(notice.logTail!.text).toContain('ERROR: lettoserver revision 102 failed to start');
      expect(JSON.stringify(notice)).not.toContain(install!.dbPassword);
      // the journal stays for the next try. The admin repairs by hand (issue 23, item 8): the compose tags back on
      // revision 101's images, `up -d` in each folder; the next run adopts that instead of undoing it to the broken images
      await expect(stat(journalPath)).resolves.toBeTruthy();
      for (const [service, id] of Object.entries(before)) await execa('docker', ['tag', id, install!.refs[service as keyof ComposeInstall['refs']]]);
      for (const dir of install!.dirs) await execa(compose.command, [...compose.args, 'up', '-d'], { cwd: dir, env: compose.env });
      for (let i = 0; i < 60 && (await containers(install!)).some((c) => c.health !== 'healthy'); i++) await new Promise((r) => setTimeout(r, 1000));
      const repaired = (await containerIds(install!)).sort();
      const recover = await cli(['recover']);
      expect(recover.exitCode, recover.stdout + recover.stderr).toBe(0);
      expect(recover.stdout + recover.stderr).toMatch(/runs revision 101 \(the revision it started from\), healthy, .*adopted as it is \(no container recreated\)/);
      expect((await containerIds(install!)).sort()).toEqual(repaired);
      await expectAllOn(101);
      expect((await readJsonLines(join(state, 'runs.jsonl'))).at(-1)).toMatchObject({ command: 'recover', result: 'recovered', to: 101 });
    });

    test('kill -9 at a random step of an update: the next run finishes or undoes it, then updates', true, async () => {
      const seed = testSeed('docker kill test');
      const points = ['download', 'backup', 'backup-lock', 'swap', 'start', 'health', 'installed'];
      const point = points[seed % points.length]!;
      console.log(`docker kill test: killed at "${point}"`);
      await setStable(105);
      const killed = await cli(['update', '--yes'], { LETTO_UPDATE_FAULT: point });
      expect(killed.signal, killed.stdout + killed.stderr).toBe('SIGKILL');
      const status = JSON.parse((await cli(['--json', 'status'])).stdout) as { unfinished: string };
      expect(status.unfinished).toContain(`interrupted at step "${point}"`);
      const next = await cli(['update', '--cron']);
      expect(next.exitCode, next.stdout + next.stderr).toBe(0);
      expect(next.stdout + next.stderr).toMatch(/Recovered from an interrupted update/);
      await expectAllOn(105);
      const commands = (await readJsonLines(join(state, 'runs.jsonl'))).slice(-2).map((r) => r.command);
      expect(commands[0]).toBe('recover');
    });

    test('kill -9 while the health check of the new revision waits: the next run adopts it, healthy, instead of undoing and installing it again', true, async () => {
      // from revision 105 (the case before) back to 101 by --revision; the channel says 101 too, so the next run has nothing more to do
      await setStable(101);
      const child = spawnCli(['--config', config, 'update', '--revision', '101', '--yes'], { env: { DOCKER_CONFIG: registry!.dockerConfig }, timeoutMs: 540_000 });
      const seen = await outputUntil(child, 'Waiting up to');
      child.kill('SIGKILL');
      expect((await child).signal, seen).toBe('SIGKILL');
      const status = JSON.parse((await cli(['--json', 'status'])).stdout) as { unfinished: string };
      expect(status.unfinished).toContain('interrupted at step "health"');
      const started = (await containerIds(install!)).sort();
      const next = await cli(['update', '--cron']);
      expect(next.exitCode, next.stdout + next.stderr).toBe(0);
      expect(next.stdout + next.stderr).toMatch(/Recovered from an interrupted update: Every LeTTo container \(3\) runs revision 101 \(the revision it was installing\), healthy, and http\S+ answers HTTP 200; it was adopted as it is \(no container recreated\)/);
      expect(next.stdout + next.stderr).not.toMatch(/Pointing|undone/);
      expect((await containerIds(install!)).sort()).toEqual(started);
      await expectAllOn(101);
      const runs = (await readJsonLines(join(state, 'runs.jsonl'))).slice(-2);
      expect(runs.map((r) => [r.command, r.result])).toEqual([['recover', 'recovered'], ['update', 'current']]);
    });

    test('retention keeps the last `keep` revisions and the running one, and removes older images', false, async () => {
      const list = await cli(['--json', 'list']);
      expect(list.exitCode, list.stderr).toBe(0);
      const revisions = (JSON.parse(list.stdout) as { local: Array<{ revision: number }> }).local.map((l) => l.revision);
      expect(revisions).toContain(105);
      expect(revisions).toContain(101);
      expect(revisions).not.toContain(100);
    });

    test('list --remote lists the registry revisions every image has', false, async () => {
      const list = await cli(['--json', 'list', '--remote']);
      expect(list.exitCode, list.stderr).toBe(0);
      expect((JSON.parse(list.stdout) as { remote: Array<{ revision: number }> }).remote.map((r) => r.revision)).toEqual([105, 103, 102, 101, 100]);
      const refused = await cli(['list', '--remote'], { DOCKER_CONFIG: registry!.wrongDockerConfig });
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toMatch(/refused the credentials/);
    });

    test('rollback --to a revision no longer kept locally pulls it from the registry', false, async () => {
      const run = await cli(['rollback', '--to', '100', '--yes']);
      expect(run.exitCode, run.stdout + run.stderr).toBe(0);
      expect(run.stdout + run.stderr).toMatch(/Pulling/);
      await expectAllOn(100);
    });

    test('watchdog: LeTTo broken inside its container, the compose restart does not help: exit 1, the notice carries its docker logs', false, async () => {
      const project = install!.projects[1]!;
      const id = (await execa('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'label=com.docker.compose.service=lettoserver'])).stdout.trim();
      expect(id).not.toBe('');
      // the pages go away inside the running container (a restart keeps its files): unhealthy, health_url 404
      await execa('docker', ['exec', id, '/bin/busybox', 'rm', '/www/ping', '/www/letto/test.jsf']);
      const run = await cli(['watchdog', '--once']);
      expect(run.exitCode, run.stdout + run.stderr).toBe(1);
      expect(run.stderr).toMatch(/the LeTTo containers were restarted \(compose restart\) but do not all run healthy: container \S*lettoserver\S* reported unhealthy after \d+ s\./);
      expect(run.stderr).not.toMatch(/TomEE|catalina/);
      const notice = notices().at(-1)!;
      expect(notice.result).toBe('restart-failed');
      expect(notice.logTail!.source).toMatch(/^`docker logs --tail 40` of lettoserver \(/);
      expect(notice.logTail!.text).toContain('LeTTo lettoserver revision 100 starting, database letto:********@db');
      expect(JSON.stringify(notices())).not.toContain(install!.dbPassword);
      // put it right: a new container from the image
      await execa(compose.command, [...compose.args, 'up', '-d', '--force-recreate'], { cwd: install!.dirs[1]!, env: compose.env });
      await expectAllOnSoon(100);
    });

    test('killed while compose brings a folder up: the compose command runs to its end, and the next run waits for it first', false, async () => {
      // compose made slow (3 s before it starts), so that the kill falls while it runs
      const slow = join(root, 'slow-compose');
      await writeFile(slow, '#!/bin/sh\nsleep 3\nexec docker-compose "$@"\n', { mode: 0o755 });
      const slowConfig = join(root, 'slow-compose.toml');
      const text = await readFile(config, 'utf8');
      expect(text).toContain('compose = "docker-compose"');
      await writeFile(slowConfig, text.replace('compose = "docker-compose"', `compose = "${slow}"`));
      const child = spawnCli(['--config', slowConfig, 'update', '--revision', '105', '--yes'], { env: { DOCKER_CONFIG: registry!.dockerConfig }, timeoutMs: 540_000 });
      const seen = await outputUntil(child, 'Bringing up');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      child.kill('SIGKILL');
      expect((await child).signal, seen).toBe('SIGKILL');
      const next = await runCli(['--config', slowConfig, 'update', '--revision', '105', '--yes'], { env: { DOCKER_CONFIG: registry!.dockerConfig }, timeoutMs: 540_000 });
      expect(next.exitCode, next.stdout + next.stderr).toBe(0);
      expect(next.stderr).toMatch(/The compose command of an interrupted run \(\S+slow-compose -p .* up -d --no-build, process group \d+\) still runs; waiting up to \d+ s/);
      await expectAllOn(105);
    });

    test('kill -9 at random moments (seeded) of whole updates, sometimes with the whole process group; the admin re-runs at once and every service ends on the intended revision', false, async () => {
      const random = prng(testSeed('docker random-moment kills'));
      const targets = [101, 105];
      for (let n = 0; n < DOCKER_KILLS; n++) {
        const target = targets[n % targets.length]!;
        // an update here takes 10–30 s (pull, tags, two compose folders, health): the kill falls anywhere in it,
        // while docker pull or docker-compose runs too; killing only our process leaves those running, as a real kill does
        const group = random() < 0.5;
        const delayMs = Math.round(random() * 25_000);
        const killed = await killAfter(['--config', config, 'update', '--revision', String(target), '--yes'], { env: { DOCKER_CONFIG: registry!.dockerConfig }, timeoutMs: 540_000 }, { delayMs, group });
        const context = `kill ${n + 1}: update to ${target}, ${killed.context}`;
        const next = await cli(['update', '--revision', String(target), '--yes']);
        console.log(`${context}; the next run: ${(next.stdout + next.stderr).split('\n').filter((l) => /still runs|Recovered/.test(l)).join(' ') || 'nothing to recover'}`);
        expect(next.exitCode, `${context}\n${next.stdout}${next.stderr}`).toBe(0);
        await expectAllOn(target);
      }
    }, Math.max(TIMEOUT, DOCKER_KILLS * 120_000));

    // last: a server with several schools (test/support/docker-schools-suite.ts), on the images published above
    const closeSchools = schoolsCases({
      test: (name, core, fn, timeoutMs) => test(name, core, fn, timeoutMs),
      root: () => root,
      id,
      prefix,
      registry: () => registry!,
      compose: () => compose,
      config: () => config,
      suiteDirs: () => install!.dirs,
      notices: () => webhook!.received.map((post) => post.body as Notice & { message: string }),
    });
  }, missing);
}
