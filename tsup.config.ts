import { defineConfig } from 'tsup';

// Three entry points: the library, the mock hypervisor ("xencall/testing") and the CLI.
// The library is emitted as ESM and CJS; the CLI only as ESM (package.json's "bin" runs
// dist/cli.js, and nothing requires it). koffi stays external so it is only required at run time,
// by the one module that loads it lazily.
const library = { index: 'src/index.ts', testing: 'src/testing/index.ts' };

export default defineConfig({
  entry: { ...library, cli: 'src/cli/bin.ts' },
  format: ['esm', 'cjs'],
  // tsup runs one esbuild build per format over the same entries: the CJS one leaves the CLI out.
  esbuildOptions(options, { format }) {
    if (format === 'cjs') options.entryPoints = library;
  },
  // stripInternal: members marked @internal (the handle's pool, env, runSync, ...) are not in the
  // published types; the library's own modules use them, users do not see them.
  dts: { entry: library, compilerOptions: { stripInternal: true } },
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  // Shared chunks, so index and testing share one copy of the error classes (instanceof works).
  splitting: true,
  // With treeshake, rollup splits the CJS chunks; without it tsup runs sucrase over them, which
  // rewrites `a ?? (yield* b)` into an arrow function and breaks generators.
  treeshake: true,
  external: ['koffi'],
  // import.meta.url (used to load koffi lazily) needs a shim in the CJS build.
  shims: true,
});
