/**
 * The layout's rules (issue 19), checked by test/unit/structure.test.ts and `npx depcruise src`.
 * Layers, lowest first: system/ (thin layer over Node) < errors, revision, time, context, config/
 * < store/ < kinds/types.ts, kinds/plan-checks.ts < war/ < kinds/tomee/, kinds/docker/ < kinds/index.ts
 * < runbook/, report/, watchdog/ < commands/ < cli.ts. See docs/architecture.md.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'An import circle knots the layers: move the shared piece one layer down.', from: {}, to: { circular: true } },
    {
      name: 'no-kind-into-another',
      severity: 'error',
      comment: "A kind of install never imports another kind's modules; what both need sits below src/kinds/.",
      from: { path: '^src/kinds/([^/]+)/' },
      to: { path: '^src/kinds/([^/]+)/', pathNot: '^src/kinds/$1/' },
    },
    {
      name: 'kinds-only-through-the-interface',
      severity: 'error',
      comment: 'The runbook, reporting, the watchdog and the CLI reach a kind only through src/kinds/index.ts and src/kinds/types.ts.',
      from: { path: '^src/', pathNot: '^src/kinds/' },
      to: { path: '^src/kinds/(tomee|docker)/' },
    },
    {
      name: 'interface-imports-only-below',
      severity: 'error',
      comment: 'src/kinds/types.ts is the interface: it imports only from the layers below the kinds.',
      from: { path: '^src/kinds/types\\.ts$' },
      to: { path: '^src/', pathNot: '^src/(errors|revision|time|context)\\.ts$|^src/(system|store|config)/|^src/kinds/plan-checks\\.ts$|^src/war/delta/summary\\.ts$' },
    },
    {
      name: 'lower-layers-stay-below',
      severity: 'error',
      comment: 'system/, store/, config/ and war/ are used by the kinds and the runbook, never the other way round.',
      from: { path: '^src/(system|store|config|war)/' },
      to: { path: '^src/(kinds|runbook|report|watchdog|commands)/|^src/cli\\.ts$' },
    },
    {
      name: 'system-is-the-bottom',
      severity: 'error',
      comment: 'src/system/ is the thin layer over Node: it imports nothing above it but the error family.',
      from: { path: '^src/system/' },
      to: { path: '^src/', pathNot: '^src/system/|^src/errors\\.ts$' },
    },
    {
      name: 'only-the-cli-layer-prints',
      severity: 'error',
      comment: 'Only the CLI layer (cli.ts, commands/) reaches the terminal through report/output.ts.',
      from: { path: '^src/', pathNot: '^src/(cli\\.ts|commands/|report/output\\.ts)' },
      to: { path: '^src/report/output\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['es6'],
  },
};
