#!/usr/bin/env node
/**
 * A TomEE-like stand-in for the demo (no Java needed). Plain ESM JavaScript so that the demo's
 * start.sh can run it with plain `node`.
 *
 * usage: node fake-tomee.mjs <catalina_base> <port>
 *
 * Like TomEE it "deploys" <catalina_base>/webapps/letto.war at startup: reads WEB-INF/web.xml and
 * WEB-INF/classes/revision.txt from the WAR, explodes it into webapps/letto/, logs catalina.out-style
 * lines to stdout (start.sh appends them to logs/catalina.out), and after a short simulated startup
 * serves the WAR's files under http://127.0.0.1:<port>/letto/. A web.xml that names a listener class
 * the WAR does not contain (the fixture's `at.letto.DoesNotExist`) makes the context fail with a
 * SEVERE line, and /letto/* then answers 404, as Tomcat does.
 *
 * It writes no pid file itself (start.sh does, with `echo $!`); on SIGTERM it logs the shutdown and
 * exits. It also exits on its own when <catalina_base> disappears (the demo's temp folder was removed).
 */
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, join, normalize, sep } from 'node:path';
import yauzl from 'yauzl';

const [base, portArg] = process.argv.slice(2);
if (!base || !portArg || !/^\d+$/.test(portArg)) {
  process.stderr.write('usage: node fake-tomee.mjs <catalina_base> <port>\n');
  process.exit(2);
}
const port = Number(portArg);
// Shows as "fake-tomee" in ps and /proc/PID/stat: the status script checks that its PID is still ours.
process.title = 'fake-tomee';
const webapps = join(base, 'webapps');
const warFile = join(webapps, 'letto.war');
const exploded = join(webapps, 'letto');
/** Simulated startup time (TomEE loads OpenEJB, CDI… before it deploys anything). */
const STARTUP_DELAY_MS = Number(process.env.FAKE_TOMEE_STARTUP_MS ?? 1000);
const started = Date.now();

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** One catalina.out line: `03-Jun-2025 21:04:05.123 INFO [main] logger message`. */
function log(level, logger, message, thread = 'main') {
  const d = new Date();
  const p = (n, w = 2) => String(n).padStart(w, '0');
  const ts = `${p(d.getDate())}-${MONTHS[d.getMonth()]}-${d.getFullYear()} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  process.stdout.write(`${ts} ${level} [${thread}] ${logger} ${message}\n`);
}

/** Reads every entry of a zip into memory (the demo WARs are a few KiB). */
function readZip(path) {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: true }, (err, zip) => {
      if (err) return reject(err);
      const entries = new Map();
      zip.on('error', reject);
      zip.on('end', () => resolve(entries));
      zip.on('entry', (entry) => {
        if (entry.fileName.endsWith('/')) return zip.readEntry();
        zip.openReadStream(entry, (streamErr, stream) => {
          if (streamErr) return reject(streamErr);
          const chunks = [];
          stream.on('data', (c) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => {
            entries.set(entry.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

/** Explodes the WAR into webapps/letto/ like Tomcat's unpackWARs (entries with `..` are skipped). */
async function explode(entries) {
  await rm(exploded, { recursive: true, force: true });
  for (const [name, data] of entries) {
    const target = normalize(join(exploded, name));
    if (!target.startsWith(exploded + sep)) continue;
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, data);
  }
}

/**
 * "Deploys" the WAR. Returns true when the context /letto started, false when it failed (or there
 * is no WAR).
 */
async function deploy() {
  if (!existsSync(warFile)) {
    log('INFO', 'org.apache.catalina.startup.HostConfig.deployDirectory', `No web application archive found at [${warFile}]`);
    return false;
  }
  const t0 = Date.now();
  log('INFO', 'org.apache.catalina.startup.HostConfig.deployWAR', `Deploying web application archive [${warFile}]`);
  let entries;
  try {
    entries = await readZip(warFile);
  } catch (error) {
    log('SEVERE', 'org.apache.catalina.startup.HostConfig.deployWAR', `Error deploying web application archive [${warFile}]\n\tjava.util.zip.ZipException: ${error.message}`);
    return false;
  }
  await explode(entries);
  const webXml = entries.get('WEB-INF/web.xml');
  const revision = (entries.get('WEB-INF/classes/revision.txt')?.toString('utf8') ?? 'unknown').split('\n')[0].trim();
  let ok = true;
  if (!webXml) {
    log('SEVERE', 'org.apache.catalina.core.StandardContext.startInternal', 'Context [/letto] has no WEB-INF/web.xml');
    ok = false;
  } else {
    for (const match of webXml.toString('utf8').matchAll(/<listener-class>\s*([\w.$]+)\s*<\/listener-class>/g)) {
      const cls = match[1];
      if (!entries.has(`WEB-INF/classes/${cls.replace(/\./g, '/')}.class`)) {
        log(
          'SEVERE',
          'org.apache.catalina.core.StandardContext.listenerStart',
          `Error configuring application listener of class [${cls}]\n\tjava.lang.ClassNotFoundException: ${cls}\n` +
            `\t\tat org.apache.catalina.loader.WebappClassLoaderBase.loadClass(WebappClassLoaderBase.java:1412)\n` +
            `\t\tat org.apache.catalina.core.StandardContext.listenerStart(StandardContext.java:4690)`,
        );
        ok = false;
      }
    }
    if (!ok) {
      log('SEVERE', 'org.apache.catalina.core.StandardContext.startInternal', 'One or more listeners failed to start. Full details will be found in the appropriate container log file');
      log('SEVERE', 'org.apache.catalina.core.StandardContext.startInternal', 'Context [/letto] startup failed due to previous errors');
    }
  }
  if (ok) log('INFO', 'at.letto.LeTTo', `LeTTo revision ${revision} started`);
  log('INFO', 'org.apache.catalina.startup.HostConfig.deployWAR', `Deployment of web application archive [${warFile}] has finished in [${Date.now() - t0}] ms`);
  return ok;
}

const CONTENT_TYPES = { '.jsf': 'text/html', '.html': 'text/html', '.txt': 'text/plain', '.css': 'text/css', '.js': 'text/javascript' };

/** Serves the exploded WAR under /letto/ (404 for everything when the context failed). */
function handler(contextOk) {
  return (req, res) => {
    const notFound = () => {
      const body = '<!doctype html><html lang="en"><head><title>HTTP Status 404 – Not Found</title></head><body><h1>HTTP Status 404 – Not Found</h1></body></html>';
      res.writeHead(404, { 'Content-Type': 'text/html;charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    let path;
    try {
      path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    } catch {
      return notFound();
    }
    if (!contextOk || !(path === '/letto' || path.startsWith('/letto/'))) return notFound();
    if (path === '/letto') {
      res.writeHead(302, { Location: '/letto/' });
      return res.end();
    }
    const rel = path.slice('/letto/'.length) || 'index.html';
    if (/^(WEB-INF|META-INF)(\/|$)/i.test(rel)) return notFound();
    const file = normalize(join(exploded, rel));
    if (!file.startsWith(exploded + sep) || !existsSync(file)) return notFound();
    const ext = file.slice(file.lastIndexOf('.'));
    res.writeHead(200, { 'Content-Type': `${CONTENT_TYPES[ext] ?? 'application/octet-stream'};charset=UTF-8` });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  };
}

let server = null;
let stopping = false;

function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log('INFO', 'org.apache.catalina.core.StandardServer.await', `A valid shutdown command was received (${signal}). Stopping the Server instance.`);
  log('INFO', 'org.apache.coyote.AbstractProtocol.pause', `Pausing ProtocolHandler ["http-nio-127.0.0.1-${port}"]`);
  log('INFO', 'org.apache.catalina.core.StandardService.stopInternal', 'Stopping service [Catalina]');
  const finish = () => {
    log('INFO', 'org.apache.coyote.AbstractProtocol.destroy', `Destroying ProtocolHandler ["http-nio-127.0.0.1-${port}"]`);
    process.exit(0);
  };
  if (server) {
    server.close(finish);
    server.closeAllConnections();
  } else finish();
  setTimeout(finish, 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGHUP', () => {}); // like nohup

// Leave no orphan behind when the demo's temp folder is gone (e.g. the demo was killed hard).
setInterval(() => {
  if (!existsSync(base)) process.exit(0);
}, 2000).unref();

log('INFO', 'org.apache.catalina.startup.VersionLoggerListener.log', 'Server version name:   Apache Tomcat (TomEE) / letto-update demo stand-in');
log('INFO', 'org.apache.catalina.startup.VersionLoggerListener.log', `CATALINA_BASE:         ${base}`);
log('INFO', 'org.apache.catalina.startup.VersionLoggerListener.log', `Java:                  none (this is Node.js ${process.version}, pid ${process.pid})`);
log('INFO', 'org.apache.catalina.core.StandardService.startInternal', 'Starting service [Catalina]');
log('INFO', 'org.apache.catalina.core.StandardEngine.startInternal', 'Starting Servlet engine: [Apache Tomcat (TomEE)]');
await new Promise((resolve) => setTimeout(resolve, STARTUP_DELAY_MS));
if (stopping) await new Promise(() => {});
const contextOk = await deploy();
if (stopping) await new Promise(() => {});
server = createServer(handler(contextOk));
server.on('error', (error) => {
  log('SEVERE', 'org.apache.catalina.core.StandardService.initConnector', `Failed to start connector [Connector[HTTP/1.1-${port}]]: ${error.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  log('INFO', 'org.apache.coyote.AbstractProtocol.start', `Starting ProtocolHandler ["http-nio-127.0.0.1-${port}"]`);
  log('INFO', 'org.apache.catalina.startup.Catalina.start', `Server startup in [${Date.now() - started}] milliseconds`);
});
