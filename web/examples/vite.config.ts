// The example host's build, and its server (`vite preview`), which stands in for the host's
// backend: it serves the app and forwards /api to longtasks (LONGTASKS_API) with the user's
// token from the `longtasks_token` cookie, as the seed's fetch('/api/...') calls expect.
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig, type ProxyOptions } from 'vite';

const api = process.env.LONGTASKS_API ?? 'http://127.0.0.1:8000';

const gateway: ProxyOptions = {
  target: api,
  changeOrigin: true,
  configure(proxy) {
    proxy.on('proxyReq', (proxyReq, req) => {
      const match = /(?:^|;\s*)longtasks_token=([^;]+)/.exec(req.headers.cookie ?? '');
      proxyReq.removeHeader('cookie');
      if (match?.[1]) proxyReq.setHeader('authorization', `Bearer ${decodeURIComponent(match[1])}`);
    });
  },
};

export default defineConfig({
  logLevel: 'warn',
  plugins: [react()],
  resolve: {
    alias: { 'seed/BroadcastPage': fileURLToPath(new URL('./src/seed/BroadcastPage.tsx', import.meta.url)) },
    // @longtasks/ui is linked from ..: make it use this app's React, not a second copy.
    dedupe: ['react', 'react-dom'],
  },
  build: { target: 'es2022' },
  preview: { proxy: { '/api': gateway } },
  server: { proxy: { '/api': gateway } },
});
