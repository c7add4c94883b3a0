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
 * Their esbuild options are in packaging/bundle-options.mjs.
 * Usage: node packaging/bundle.mjs [--bin] [--single]   (none: both)
 */
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { binOptions, common, repo } from './bundle-options.mjs';

const wanted = process.argv.slice(2);
const both = wanted.length === 0;

if (both || wanted.includes('--bin')) {
  rmSync(`${repo}/dist/bundle`, { recursive: true, force: true });
  await build(binOptions);
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
