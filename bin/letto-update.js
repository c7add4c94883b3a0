#!/usr/bin/env node
// dist/bundle/ (esbuild, made by `npm run build`) starts much faster than dist/'s ~60 modules; dist/cli.js
// is used when the bundle is missing or older than dist/ (after a bare `tsc`).
import { statSync } from 'node:fs';

const built = (path) => statSync(new URL(path, import.meta.url), { throwIfNoEntry: false })?.mtimeMs ?? -1;
const { main } = await import(built('../dist/bundle/cli.js') >= built('../dist/cli.js') ? '../dist/bundle/cli.js' : '../dist/cli.js');
process.exitCode = await main(process.argv);
