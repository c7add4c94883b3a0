/**
 * One LeTTo server for an end-to-end test file: a real Tomcat (test/support/tomcat.ts) with
 * `letto.war` of `installed` running and healthy, a TLS + Basic-auth download server on loopback,
 * and the config file pointing at both. Shared by the end-to-end suites (update, unattended, faults).
 */
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { buildWar } from '../../fixtures/build-war.js';
import { readWarRevision } from '../../src/war/verify.js';
import { expectWebappsInvariant } from './invariant.js';
import { runCli, type CliResult } from './cli.js';
import { populateDownloadRoot, startDownloadServer, writeServerSection, type DownloadServer, type PopulateOptions } from './download-server.js';
import { createLettoServer, type LettoServer } from './tomcat.js';

export interface E2eLetto {
  server: LettoServer;
  download: DownloadServer;
  config: string;
  state: string;
  staging: string;
  backups: string;
  backupLock: string;
  password: string;
  /** Runs the built CLI with this config (extra environment in `env`). */
  cli(args: string[], env?: Record<string, string>): Promise<CliResult>;
  /** The parsed lines of runs.jsonl. */
  runs(): Promise<Array<Record<string, unknown>>>;
  /** The journal, or null. */
  journal(): Promise<Record<string, unknown> | null>;
  /** Whether the backup lock file exists. */
  backupLockExists(): Promise<boolean>;
  /** The revision of webapps/letto.war (null when it has none). */
  installed(): Promise<number | null>;
  /**
   * Asserts that a run has settled on `revision`: it is in webapps and LeTTo answers with it, webapps
   * holds nothing else TomEE would deploy ({@link expectWebappsInvariant}, any of `known`), and no
   * journal or backup lock is left.
   */
  expectSettledOn(revision: number, known: number[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the server described above. `extraConfig` is TOML appended to the config file (further
 * sections such as `[notify]`); `healthTimeout` is `tomee.health_timeout` in seconds (default 25).
 * Throws when the initial revision does not answer within 90 s.
 */
export async function startE2eLetto(opts: {
  installed: number;
  downloads: PopulateOptions;
  healthTimeout?: number;
  extraConfig?: string;
}): Promise<E2eLetto> {
  const password = 'e2e-Fault-Pässword-9';
  const server = await createLettoServer();
  try {
    const root = join(server.root, 'download');
    await populateDownloadRoot(root, opts.downloads);
    const download = await startDownloadServer({ root, tls: true, user: 'letto', password });
    const initial = join(server.root, 'initial.war');
    await buildWar(initial, { revision: opts.installed });
    await server.installWar(initial);
    await server.start();
    if (!(await server.waitHealthy(90))) throw new Error(`the initial revision did not answer:\n${await server.catalinaOut()}`);
    const etc = join(server.root, 'etc');
    const serverSection = await writeServerSection(etc, download, password, 'channel = "stable"');
    const state = join(server.root, 'var/lib/letto-update');
    const backupLock = join(server.root, 'sicherung/sqlsicherungaktiv');
    const staging = `${server.letto}/war`;
    const backups = `${server.letto}/backup/war`;
    const config = join(etc, 'config.toml');
    await writeFile(
      config,
      `${serverSection}
[tomee]
webapps = "${server.webapps}"
start = "${server.letto}/start.sh"
stop = "${server.letto}/stop.sh"
status = "${server.letto}/status.sh"
health_url = "${server.healthUrl}"
health_timeout = ${opts.healthTimeout ?? 25}

[paths]
staging = "${staging}"
backups = "${backups}"
state = "${state}"
backup_lock = "${backupLock}"
${opts.extraConfig ? `\n${opts.extraConfig}` : ''}`,
    );
    await chmod(config, 0o644);
    const letto: E2eLetto = {
      server,
      download,
      config,
      state,
      staging,
      backups,
      backupLock,
      password,
      cli: (args, env) => runCli(['--config', config, ...args], { ...(env ? { env } : {}), timeoutMs: 240_000 }),
      async runs() {
        const text = await readFile(join(state, 'runs.jsonl'), 'utf8').catch(() => '');
        return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      },
      async journal() {
        const text = await readFile(join(state, 'journal.json'), 'utf8').catch(() => null);
        return text === null ? null : (JSON.parse(text) as Record<string, unknown>);
      },
      backupLockExists: () => stat(backupLock).then(() => true, () => false),
      installed: () => readWarRevision(join(server.webapps, 'letto.war')),
      async expectSettledOn(revision, known) {
        expect(await letto.installed()).toBe(revision);
        const response = await fetch(server.healthUrl);
        expect(response.status).toBe(200);
        expect(await response.text()).toContain(`revision ${revision}`);
        await expectWebappsInvariant(server.webapps, known, { settled: true, ownerUid: server.serviceUser.uid });
        expect(await letto.journal()).toBeNull();
        expect(await letto.backupLockExists()).toBe(false);
      },
      async close() {
        await download.close();
        await server.destroy();
      },
    };
    return letto;
  } catch (error) {
    await server.destroy();
    throw error;
  }
}
