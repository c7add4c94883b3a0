import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DockerConfig } from '../../src/config/config.js';
import { loadConfig } from '../../src/config/config.js';
import type { LettoService } from '../../src/kinds/docker/compose.js';
import { assertFilesExist, composeOptions, describeCall, groupOf, schoolOf } from '../../src/kinds/docker/groups.js';
import { healthTargets, healthUrls } from '../../src/kinds/docker/schools.js';

const letto = '/opt/letto/docker/compose/letto';
const docker = (health_url: string | string[]): DockerConfig => ({ compose_dirs: ['/x'], image_prefix: 'lettohub/', registry: '', revision_tag: 'rev{revision}', health_url, health_timeout: 300, compose: '', command: 'docker' });
const service = (file: string, name: string): LettoService => {
  const group = groupOf({ dir: letto, project: 'letto', files: [join(letto, file)], envFiles: [] });
  return { dir: letto, service: name, ref: 'lettohub/lettoserver:stable', container: null, group, stopped: false };
};

describe('compose calls of a server with several schools', () => {
  it('are brought up the way compose recorded them: -p, each -f, the project folder, each env file; never --remove-orphans', () => {
    const call = { dir: letto, project: 'letto', files: [`${letto}/docker-compose-a.yml`], envFiles: [`${letto}/.env`] };
    expect(composeOptions(call)).toEqual(['-p', 'letto', '-f', `${letto}/docker-compose-a.yml`, '--project-directory', letto, '--env-file', `${letto}/.env`]);
    expect(composeOptions({ dir: letto, project: null, files: [], envFiles: [] })).toEqual([]);
    expect(composeOptions(call)).not.toContain('--remove-orphans');
    expect(describeCall(call)).toBe(`docker-compose-a.yml in ${letto}`);
  });

  it('the school comes from docker-compose-<school>.yml; the LTI service, setup and a plain docker-compose.yml have none', () => {
    const of = (file: string) => schoolOf({ dir: letto, project: 'letto', files: [join(letto, file)], envFiles: [] });
    expect(of('docker-compose-htl-wels.yml')).toBe('htl-wels');
    expect(of('docker-compose-a.yaml')).toBe('a');
    expect(of('docker-service-lti.yml')).toBeNull();
    expect(of('docker-compose.yml')).toBeNull();
  });

  it('a group whose compose file is gone is refused, naming the container and the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lu-schools-'));
    try {
      await writeFile(join(dir, 'docker-compose-a.yml'), 'services: {}\n');
      const here = groupOf({ dir, project: 'letto', files: [join(dir, 'docker-compose-a.yml')], envFiles: [] });
      await expect(assertFilesExist(here, [])).resolves.toBeUndefined();
      const gone = groupOf({ dir, project: 'letto', files: [join(dir, 'docker-compose-b.yml')], envFiles: [] });
      const container = { id: 'x', name: 'letto-lettoserver-b-1', service: 'lettoserver-b', project: 'letto', imageId: 'sha256:1', image: 'lettohub/lettoserver:stable', state: 'running', health: null, call: gone };
      await expect(assertFilesExist(gone, [container])).rejects.toThrow(`The LeTTo container letto-lettoserver-b-1 was brought up with ${join(dir, 'docker-compose-b.yml')}, which is gone`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('health URLs per school', () => {
  const services = [service('docker-compose-b.yml', 'lettoserver-b'), service('docker-compose-a.yml', 'lettoserver-a'), service('docker-service-lti.yml', 'letto-service-lti')];

  it('{school} stands for each school that is up, and a failure there blames that school\'s services only', () => {
    const targets = healthTargets(docker(['https://localhost/letto{school}/test.jsf', 'https://localhost/lti/ping']), services);
    expect(targets.map((t) => [t.url, t.school, t.blame.map((s) => s.service)])).toEqual([
      ['https://localhost/lettoa/test.jsf', 'a', ['lettoserver-a']],
      ['https://localhost/lettob/test.jsf', 'b', ['lettoserver-b']],
      ['https://localhost/lti/ping', null, ['lettoserver-b', 'lettoserver-a', 'letto-service-lti']],
    ]);
  });

  it('one URL, a list, or none', () => {
    expect(healthUrls(docker(''))).toEqual([]);
    expect(healthUrls(docker('https://localhost/letto/test.jsf'))).toEqual(['https://localhost/letto/test.jsf']);
    expect(healthTargets(docker(''), services)).toEqual([]);
  });

  it('the config takes a list, {school}, and several URLs from the environment; not a broken URL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lu-schools-'));
    const load = async (text: string, env: NodeJS.ProcessEnv = {}) => {
      await writeFile(join(dir, 'config.toml'), `[docker]\ncompose_dirs = ["/x"]\n${text}`);
      return (await loadConfig(join(dir, 'config.toml'), env)).config.docker!.health_url;
    };
    try {
      expect(await load('health_url = ["https://localhost/letto{school}/test.jsf", "https://localhost/lti/"]\n')).toEqual(['https://localhost/letto{school}/test.jsf', 'https://localhost/lti/']);
      expect(await load('', { LETTO_UPDATE_DOCKER_HEALTH_URL: 'https://a/x https://b/y' })).toEqual(['https://a/x', 'https://b/y']);
      expect(await load('', { LETTO_UPDATE_DOCKER_HEALTH_URL: 'https://a/letto{school}/' })).toBe('https://a/letto{school}/');
      await expect(load('health_url = "localhost/letto"\n')).rejects.toThrow(/health_url/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
