/**
 * A real Apache httpd (Debian's `apache2`) on a loopback port, started with a minimal config of its
 * own: TLS with the tests' self-signed certificate, HTTP Basic auth from an htpasswd file, the folder
 * `root` served under three prefixes, and an access log of every request with its Range, If-Range,
 * status and body bytes:
 * - `/download/letto/`: as Apache serves static files by default;
 * - `/strict/letto/`: `MaxRanges 1` (a request with more than one range gets the whole file);
 * - `/norange/letto/`: `MaxRanges none` (Range is ignored: always 200);
 * - `/slow/letto/`: mod_ratelimit at `rateKiB` KiB/s per connection.
 * Runs in the foreground (`-DFOREGROUND`) as a child of the test process; `close()` stops it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getTestCertificate } from './download-server.js';
import { freePort } from './net.js';

const APACHE = '/usr/sbin/apache2';
const MODULES = '/usr/lib/apache2/modules';

/** One line of the access log. */
export interface ApacheRequest {
  method: string;
  path: string;
  status: number;
  /** Body bytes of the answer (%B: what Apache handed on, even when the client was gone). */
  bytes: number;
  /** Bytes sent on the connection for it, headers and TLS included (%O, mod_logio). */
  wire: number;
  range: string | null;
  ifRange: string | null;
}

/** A running httpd. */
export interface Apache {
  /** `https://127.0.0.1:PORT/` (add `download/letto/`, `strict/letto/`, `norange/letto/` or `slow/letto/`). */
  base: string;
  port: number;
  caPem: string;
  /** The access log so far (Apache writes a line once a request is answered). */
  requests(): Promise<ApacheRequest[]>;
  close(): Promise<void>;
}

/** Why Apache cannot be used here, or null when it can. */
export function apacheMissing(): string | null {
  if (!existsSync(APACHE) || !existsSync(join(MODULES, 'mod_ssl.so'))) return `${APACHE} with mod_ssl is not installed (Debian package apache2)`;
  return null;
}

/** Starts httpd serving `root` (made readable for Apache's user `nobody`), Basic auth `user`/`password`, on `host` (default 127.0.0.1). */
export async function startApache(opts: { root: string; user: string; password: string; rateKiB?: number; host?: string }): Promise<Apache> {
  const host = opts.host ?? '127.0.0.1';
  const dir = await mkdtemp(join(tmpdir(), 'letto-apache-'));
  await chmod(dir, 0o755);
  await chmod(opts.root, 0o755);
  const { key, cert } = await getTestCertificate();
  await writeFile(join(dir, 'key.pem'), key, { mode: 0o600 });
  await writeFile(join(dir, 'cert.pem'), cert);
  // htpasswd -i reads the password from stdin: it never appears in argv
  execFileSync('htpasswd', ['-c', '-i', '-B', join(dir, 'htpasswd'), opts.user], { input: opts.password });
  await chmod(join(dir, 'htpasswd'), 0o644);
  const port = await freePort();
  const modules = ['mpm_event', 'authn_core', 'authn_file', 'authz_core', 'authz_user', 'auth_basic', 'alias', 'ssl', 'socache_shmcb', 'ratelimit', 'env'];
  const conf = `ServerRoot ${dir}
ServerName 127.0.0.1
Listen ${host}:${port}
PidFile ${dir}/httpd.pid
DefaultRuntimeDir ${dir}
ErrorLog ${dir}/error.log
User nobody
Group nogroup
${modules.map((m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so`).join('\n')}
LogFormat "%m %U %>s %B %O \\"%{Range}i\\" \\"%{If-Range}i\\"" delta
CustomLog ${dir}/access.log delta
SSLEngine on
SSLCertificateFile ${dir}/cert.pem
SSLCertificateKeyFile ${dir}/key.pem
SSLSessionCache shmcb:${dir}/ssl_cache(512000)
DocumentRoot ${dir}
KeepAlive On
MaxKeepAliveRequests 1000
Alias /download/letto/ ${opts.root}/
Alias /strict/letto/ ${opts.root}/
Alias /norange/letto/ ${opts.root}/
Alias /slow/letto/ ${opts.root}/
<Directory ${opts.root}>
  AuthType Basic
  AuthName "LeTTo Download"
  AuthUserFile ${dir}/htpasswd
  Require valid-user
</Directory>
<Location /strict/>
  MaxRanges 1
</Location>
<Location /norange/>
  MaxRanges none
</Location>
<Location /slow/>
  SetOutputFilter RATE_LIMIT
  SetEnv rate-limit ${opts.rateKiB ?? 256}
</Location>
`;
  await writeFile(join(dir, 'httpd.conf'), conf);
  const child: ChildProcess = spawn(APACHE, ['-f', join(dir, 'httpd.conf'), '-DFOREGROUND'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // ready once it accepts connections
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`apache2 exited at once: ${stderr}${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`);
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, host);
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    }).catch(() => false);
    if (up) break;
    if (i > 100) throw new Error(`apache2 does not listen on ${port}: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    base: `https://${host}:${port}/`,
    port,
    caPem: cert,
    async requests() {
      const text = await readFile(join(dir, 'access.log'), 'utf8').catch(() => '');
      return text.split('\n').flatMap((line) => {
        // Apache escapes the quotes of a logged header value (an ETag in If-Range) as \"
        const m = /^(\S+) (\S+) (\d+) (\d+|-) (\d+) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/.exec(line);
        if (!m) return [];
        const value = (v: string) => (v === '-' ? null : v.replace(/\\(.)/g, '$1'));
        return [{ method: m[1]!, path: m[2]!, status: Number(m[3]), bytes: m[4] === '-' ? 0 : Number(m[4]), wire: Number(m[5]), range: value(m[6]!), ifRange: value(m[7]!) }];
      });
    },
    async close() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

