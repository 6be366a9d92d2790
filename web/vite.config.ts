// The library build: `dist/index.js` (the element, client, store...) and `dist/react.js` (the
// React bindings, importing the first; React itself stays the host's). Declarations come from
// `tsc -p tsconfig.build.json`. The tests have their own config (vitest.config.ts).
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

export default defineConfig({
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    target: 'es2022',
    lib: {
      entry: { index: resolve(import.meta.dirname, 'src/index.ts'), react: resolve(import.meta.dirname, 'src/react/index.ts') },
      formats: ['es'],
    },
    rollupOptions: {
      external: ['react', 'react-dom', 'react/jsx-runtime'],
      // What both entry points share (the element, client, store...) in one chunk.
      output: { chunkFileNames: 'shared-[hash].js' },
    },
  },
});
