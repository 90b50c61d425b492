import { defineConfig } from 'tsup';

// Three entry points: the library, the mock hypervisor ("xencall/testing") and the CLI.
// ESM and CJS are both emitted; koffi stays external so it is only required at run time,
// by the one module that loads it lazily.
export default defineConfig({
  entry: { index: 'src/index.ts', testing: 'src/testing/index.ts', cli: 'src/cli/main.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts', testing: 'src/testing/index.ts' } },
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  splitting: false,
  external: ['koffi'],
  banner: ({ format }) => (format === 'esm' ? {} : {}),
});
