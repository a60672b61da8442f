import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Served by the Countersign server at /console/ under a strict CSP (no inline script or style,
// Trusted Types required): keep every script and stylesheet in its own file.
export default defineConfig({
  base: '/console/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  // `npm run dev -w @countersign/console` against a local `countersign serve` (port 8787).
  server: { proxy: { '/v1': 'http://127.0.0.1:8787' } },
});
