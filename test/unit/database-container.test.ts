/**
 * The script a Docker install's database tools run under inside the MySQL container
 * (src/database/connection.ts, containerConnection), run here by the real `sh` with `docker exec -i
 * <container>` taken off the front (test/e2e/docker-database.test.ts runs it in a real container):
 * the password comes from the variable named in the config, reaches the tool as MYSQL_PWD and never
 * appears in an argv; the MariaDB name of a tool is used when the image has it, else MySQL's.
 */
import { execa } from 'execa';
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerConnection } from '../../src/database/connection.js';

const SECRET = 'Ge heim$x "quoted" \'single\'';
let bin: string;

/** A stand-in for a tool: prints its name, its argv and whether MYSQL_PWD equals the secret. */
async function tool(name: string): Promise<void> {
  const path = join(bin, name);
  await writeFile(path, `#!/bin/sh\necho "${name}"\nfor a in "$@"; do echo "arg:$a"; done\n[ "$MYSQL_PWD" = "$SECRET_SEEN" ] && echo "password:ok" || echo "password:\${MYSQL_PWD:+other}"\n`);
  await chmod(path, 0o755);
}

/** A folder for PATH with the shell and printenv only (the host's own MariaDB tools must not be found). */
async function toolFolder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'letto-container-tools-'));
  await symlink('/bin/sh', join(dir, 'sh'));
  await symlink('/usr/bin/printenv', join(dir, 'printenv'));
  return dir;
}

/** Runs a connection's argv without `docker exec -i <container>`, in an environment like the container's (PATH: only `path`). */
async function run(argv: string[], env: Record<string, string>, path = bin): Promise<string[]> {
  expect(argv.slice(0, 4)).toEqual(['docker', 'exec', '-i', 'letto-mysql']);
  const result = await execa(argv[4]!, argv.slice(5), { env: { PATH: path, SECRET_SEEN: SECRET, ...env }, extendEnv: false });
  return result.stdout.split('\n');
}

const config = (passwordVariable: string) => ({ container: 'letto-mysql', user: 'root', password_variable: passwordVariable, socket: '', option_file: '', dump_command: '', client_command: '', timeout: 60 });

describe('the tools of a Docker install run inside the MySQL container', () => {
  beforeAll(async () => {
    bin = await toolFolder();
    for (const name of ['mariadb', 'mariadb-dump', 'mysqldump']) await tool(name);
  });
  afterAll(async () => {
    await rm(bin, { recursive: true, force: true });
  });

  it('the password comes from the named variable of the container as MYSQL_PWD, never in an argv', async () => {
    const connection = containerConnection(config('MYSQL_ROOT_PASSWORD'), 'docker');
    for (const argv of [connection.client('letto_a'), connection.dump('letto_a')]) expect(argv.join(' ')).not.toContain('Ge heim');
    const client = await run(connection.client('letto_a'), { MYSQL_ROOT_PASSWORD: SECRET });
    expect(client[0]).toBe('mariadb');
    expect(client).toContain('arg:--user=root');
    expect(client).toContain('arg:letto_a');
    expect(client).toContain('password:ok');
    expect(client.some((line) => line.includes('Ge heim'))).toBe(false);
  });

  it('without the variable (or with password_variable = "") the tool gets no password', async () => {
    const unset = await run(containerConnection(config('MYSQL_ROOT_PASSWORD'), 'docker').client(), {});
    expect(unset.at(-1)).toBe('password:');
    const none = await run(containerConnection(config(''), 'docker').client(), { MYSQL_ROOT_PASSWORD: SECRET });
    expect(none.at(-1)).toBe('password:');
  });

  it("MySQL's tool when the image has no MariaDB one (mysqldump for mariadb-dump)", async () => {
    const connection = containerConnection(config('MYSQL_ROOT_PASSWORD'), 'docker');
    expect((await run(connection.dump('letto_a'), { MYSQL_ROOT_PASSWORD: SECRET }))[0]).toBe('mariadb-dump');
    const mysqlOnly = await toolFolder();
    try {
      await writeFile(join(mysqlOnly, 'mysqldump'), `#!/bin/sh\necho mysqldump\n[ "$MYSQL_PWD" = "$SECRET_SEEN" ] && echo password:ok\n`);
      await chmod(join(mysqlOnly, 'mysqldump'), 0o755);
      expect(await run(connection.dump('letto_a'), { MYSQL_ROOT_PASSWORD: SECRET }, mysqlOnly)).toEqual(['mysqldump', 'password:ok']);
    } finally {
      await rm(mysqlOnly, { recursive: true, force: true });
    }
  });
});
