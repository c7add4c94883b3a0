/**
 * Builds the demo's throw-away LeTTo server in a temp folder: the /opt/tomee and /opt/letto layout,
 * LeTTo-style control scripts that run the TomEE stand-in (demo/fake-tomee.mjs), the state and backup
 * lock folders, and letto-update's config with its password and CA files.
 *
 * Everything belongs to the user running the demo (root or not): letto-update takes the owner of
 * webapps/letto.war as the service user, so it acts directly, without switching users.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWar } from '../fixtures/build-war.js';

/** Paths of the demo server (all absolute, inside `root`). */
export interface DemoLayout {
  root: string;
  tomee: string;
  webapps: string;
  war: string;
  catalinaOut: string;
  pidFile: string;
  letto: string;
  scripts: { start: string; stop: string; status: string; restart: string };
  staging: string;
  backups: string;
  state: string;
  backupLock: string;
  etc: string;
  config: string;
  passwordFile: string;
  caFile: string;
  downloadRoot: string;
}

/** Where everything goes inside `root`, mirroring a LeTTo server (see ../shared/DOMAIN.md). */
export function demoLayout(root: string): DemoLayout {
  const tomee = join(root, 'opt', 'tomee');
  const letto = join(root, 'opt', 'letto');
  const etc = join(root, 'etc', 'letto-update');
  return {
    root,
    tomee,
    webapps: join(tomee, 'webapps'),
    war: join(tomee, 'webapps', 'letto.war'),
    catalinaOut: join(tomee, 'logs', 'catalina.out'),
    pidFile: join(tomee, 'temp', 'catalina.pid'),
    letto,
    scripts: {
      start: join(letto, 'start.sh'),
      stop: join(letto, 'stop.sh'),
      status: join(letto, 'status.sh'),
      restart: join(letto, 'restart.sh'),
    },
    staging: join(letto, 'war'),
    backups: join(letto, 'backup', 'war'),
    state: join(root, 'var', 'lib', 'letto-update'),
    backupLock: join(root, 'sicherung', 'sqlsicherungaktiv'),
    etc,
    config: join(etc, 'config.toml'),
    passwordFile: join(etc, 'password'),
    caFile: join(etc, 'download-ca.pem'),
    downloadRoot: join(root, 'srv', 'download', 'letto'),
  };
}

/** Single-quotes a string for /bin/sh. */
function sh(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The part shared by the scripts: `running` succeeds (and sets `pid`) when the pid file names a live
 * process that is the TomEE stand-in. A zombie counts as gone: in containers PID 1 often does not reap
 * orphans, and `kill -0` succeeds on a zombie.
 */
function prelude(l: DemoLayout): string {
  return `#!/bin/sh
# Demo stand-in for LeTTo's /opt/letto scripts (written by letto-update's demo/run-demo.ts).
TOMEE=${sh(l.tomee)}
PIDFILE=${sh(l.pidFile)}

running() {
  # Shell built-ins only: nothing here forks, so a busy machine cannot make it say "not running".
  pid=
  [ -f "$PIDFILE" ] || return 1
  read -r pid <"$PIDFILE" 2>/dev/null
  case "$pid" in ''|*[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/stat" ]; then
    stat=
    read -r stat <"/proc/$pid/stat" 2>/dev/null
    case "$stat" in
      *") Z "*|*") X "*) return 1 ;;    # a zombie is gone
      *"(fake-tomee) "*|*"(node) "*|*"(nodejs) "*|*"(nohup) "*) ;;  # the TomEE stand-in (or just starting)
      '') ;;                            # vanished just now: kill -0 succeeded, count it as running
      *) return 1 ;;                    # the PID was reused by something else
    esac
  fi
  return 0
}
`;
}

/** The four control scripts, with the same contracts as LeTTo's (status.sh: PID alone + exit 0, else exit 3). */
function scripts(l: DemoLayout, port: number): Record<keyof DemoLayout['scripts'], string> {
  const fake = fileURLToPath(new URL('./fake-tomee.mjs', import.meta.url));
  return {
    start: `${prelude(l)}
if running; then
  echo "TomEE is already running (PID $pid)"
  exit 0
fi
mkdir -p "$TOMEE/logs" "$TOMEE/temp"
cd "$TOMEE" || exit 1
# Detached from our stdout/stderr: whoever runs this script must not wait for TomEE to exit.
nohup ${sh(process.execPath)} ${sh(fake)} "$TOMEE" ${port} </dev/null >>"$TOMEE/logs/catalina.out" 2>&1 &
echo $! >"$PIDFILE"
echo "TomEE started (PID $!)"
`,
    stop: `${prelude(l)}
if ! running; then
  rm -f "$PIDFILE"
  echo "TomEE is not running"
  exit 0
fi
kill -TERM "$pid" 2>/dev/null
i=0
while running; do
  i=$((i + 1))
  [ "$i" -eq 100 ] && kill -KILL "$pid" 2>/dev/null
  if [ "$i" -ge 150 ]; then
    echo "TomEE (PID $pid) did not stop" >&2
    exit 1
  fi
  sleep 0.1
done
rm -f "$PIDFILE"
echo "TomEE stopped"
`,
    status: `${prelude(l)}
if running; then
  echo "$pid"
  exit 0
fi
echo "TomEE is not running"
exit 3
`,
    restart: `#!/bin/sh
${sh(l.scripts.stop)} && exec ${sh(l.scripts.start)}
`,
  };
}

/** TOML basic string (JSON's escaping is a subset TOML accepts for these paths and URLs). */
function toml(value: string): string {
  return JSON.stringify(value);
}

/** Options for {@link createDemoServer}. */
export interface DemoServerOptions {
  /** Revision of the installed letto.war. */
  installed: number;
  /** Port the TomEE stand-in listens on (127.0.0.1). */
  tomeePort: number;
  /** The download server as letto-update should see it. */
  download: { url: string; user: string; password: string; caPem: string };
  /** Seconds the new revision gets to answer its health check. */
  healthTimeout: number;
}

/** Creates the folders, the installed WAR, the scripts and letto-update's config. */
export async function createDemoServer(l: DemoLayout, opts: DemoServerOptions): Promise<void> {
  for (const dir of [
    l.webapps,
    join(l.tomee, 'logs'),
    join(l.tomee, 'temp'),
    join(l.tomee, 'conf'),
    l.staging,
    l.backups,
    l.state,
    join(l.root, 'sicherung'),
    l.etc,
  ]) {
    await mkdir(dir, { recursive: true });
  }
  await buildWar(l.war, { revision: opts.installed });
  await writeFile(l.catalinaOut, '');
  for (const [name, text] of Object.entries(scripts(l, opts.tomeePort))) {
    const path = l.scripts[name as keyof DemoLayout['scripts']];
    await writeFile(path, text);
    await chmod(path, 0o755);
  }
  await writeFile(l.passwordFile, `${opts.download.password}\n`, { mode: 0o600 });
  await chmod(l.passwordFile, 0o600);
  await writeFile(l.caFile, opts.download.caPem);
  await writeFile(
    l.config,
    `# letto-update config for the demo: everything lives in ${l.root}
[server]
url = ${toml(opts.download.url)}
user = ${toml(opts.download.user)}
password_file = ${toml(l.passwordFile)}
channel = "stable"
ca_file = ${toml(opts.download.caPem ? l.caFile : '')}

[tomee]
webapps = ${toml(l.webapps)}
war_name = "letto.war"
start = ${toml(l.scripts.start)}
stop = ${toml(l.scripts.stop)}
status = ${toml(l.scripts.status)}
health_url = ${toml(`http://127.0.0.1:${opts.tomeePort}/letto/test.jsf`)}
health_timeout = ${opts.healthTimeout}

[paths]
staging = ${toml(l.staging)}
backups = ${toml(l.backups)}
keep = 5
state = ${toml(l.state)}
backup_lock = ${toml(l.backupLock)}
`,
  );
}
