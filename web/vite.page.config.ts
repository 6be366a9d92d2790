// The service's own page (`/`), built from page/ and the package's sources into api/static/,
// which the API serves (index.html at `/`, the rest under `/static/`) and the wheel ships.
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

export default defineConfig({
  logLevel: 'warn',
  root: resolve(import.meta.dirname, 'page'),
  base: '/static/',
  build: {
    outDir: resolve(import.meta.dirname, '../api/static'),
    emptyOutDir: true,
    target: 'es2022',
    // No inlined data: URLs and no source maps served to users; hashed names cache forever.
    assetsInlineLimit: 0,
  },
});
