#!/usr/bin/env node
/**
 * esbuild bundles of the CLI, with every dependency inside (nothing is loaded from node_modules):
 *
 * - `dist/bundle/` (`--bin`, part of `npm run build`): ES modules split at each dynamic import, entry
 *   `dist/bundle/cli.js`. bin/letto-update.js loads it instead of dist/cli.js: a command parses only
 *   the chunks it uses, from a handful of files instead of ~60 modules in node_modules.
 * - `build/letto-update.cjs` (`--single`, part of `npm run package`): one CommonJS file that runs the CLI,
 *   the main script of the single executable (Node's SEA runs one CommonJS script).
 *
 * The version is baked in from package.json (the bundles have no package.json beside them).
 * Usage: node packaging/bundle.mjs [--bin] [--single]   (none: both)
 */
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const wanted = process.argv.slice(2);
const both = wanted.length === 0;

const common = {
  absWorkingDir: repo,
  bundle: true,
  platform: 'node',
  define: { LETTO_UPDATE_VERSION: JSON.stringify(version) },
  logLevel: 'warning',
  legalComments: 'none',
};

if (both || wanted.includes('--bin')) {
  rmSync(`${repo}/dist/bundle`, { recursive: true, force: true });
  await build({
    ...common,
    entryPoints: { cli: 'src/cli.ts' },
    outdir: 'dist/bundle',
    format: 'esm',
    splitting: true,
    target: 'node20.18',
    chunkNames: '[name]-[hash]',
    // CommonJS dependencies (nodemailer, yauzl…) call require() for Node's built-in modules
    banner: { js: "import { createRequire as __lettoRequire } from 'node:module'; const require = __lettoRequire(import.meta.url);" },
  });
}

if (both || wanted.includes('--single')) {
  await build({
    ...common,
    stdin: {
      contents: "import { main } from './src/cli.ts';\nvoid main(process.argv).then((code) => { process.exitCode = code; });\n",
      resolveDir: repo,
      sourcefile: 'single-entry.ts',
      loader: 'ts',
    },
    outfile: 'build/letto-update.cjs',
    format: 'cjs',
    target: 'node24',
    // CommonJS has no import.meta: its url is the file URL of this script (in the executable: of the executable)
    banner: { js: 'var __lettoImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
    define: { ...common.define, 'import.meta.url': '__lettoImportMetaUrl' },
  });
}
