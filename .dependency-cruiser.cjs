/**
 * The project's dependency rules, checked by `npm run deps` (and so by `npm test`, right after tsc).
 * Paths are relative to the repository root; every rule is an error.
 *
 * Type-only imports are cruised too (tsPreCompilationDeps): tsc erases them, but they still tie one module
 * to another. The cycle rule counts them: a cycle through types is still two modules that cannot be
 * understood (or moved) apart, and under verbatimModuleSyntax `import { type X } from './a.js'` is emitted
 * as `import {} from './a.js'`, a real load-order edge, though dependency-cruiser files it as type-only.
 */

/** The composition root: the only plugin modules that wire adapters in. */
const COMPOSITION_ROOT = '^plugin/(app|main)\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycle, type-only imports included.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'media-stays-below-calls',
      severity: 'error',
      comment: 'plugin/media is the media pipeline: it knows nothing of calls or the REST API (adapters: see adapters-only-from-composition-root).',
      from: { path: '^plugin/media/' },
      to: { path: '^(plugin/calls|plugin/rest)/' },
    },
    {
      name: 'calls-stay-below-interfaces',
      severity: 'error',
      comment: 'plugin/calls is the domain: no REST, console or metrics (adapters: see adapters-only-from-composition-root).',
      from: { path: '^plugin/calls/' },
      to: { path: '^(plugin/rest|plugin/console|plugin/metrics)/' },
    },
    {
      name: 'plugin-not-to-scripts-or-tests',
      severity: 'error',
      comment: 'The app never imports the scripts or the tests.',
      from: { path: '^plugin/' },
      to: { path: '^(scripts|test)/' },
    },
    {
      name: 'adapters-only-from-composition-root',
      severity: 'error',
      comment: 'Only the composition root (plugin/app.ts, plugin/main.ts) wires adapters in; everything else gets ports.',
      from: { path: '^plugin/', pathNot: COMPOSITION_ROOT },
      to: { path: '^adapters/' },
    },
    {
      name: 'adapters-not-to-rest-or-console',
      severity: 'error',
      comment: 'Adapters serve the core; they do not reach into its REST API or console.',
      from: { path: '^adapters/' },
      to: { path: '^plugin/(rest|console)/' },
    },
    {
      name: 'sockets-and-processes-in-adapters',
      severity: 'error',
      comment:
        'Code that opens sockets or runs processes lives in adapters/: plugin modules (but the composition root) may only ' +
        'import types from these (import type, every named import marked type, or a type-level import("node:…")).',
      from: { path: '^plugin/', pathNot: COMPOSITION_ROOT },
      to: {
        dependencyTypes: ['core'],
        path: '^(node:)?(net|tls|dgram|child_process|http|https|worker_threads)$',
        dependencyTypesNot: ['type-only', 'type-import'],
      },
    },
  ],
  options: {
    // The console page (plugin/console/static) is plain browser JavaScript, not a TypeScript source: its
    // ./lib/ imports are URLs the server maps onto dist/plugin, not paths on disk.
    exclude: { path: '^plugin/console/static/' },
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
    reporterOptions: { text: { highlightFocused: true } },
  },
};
