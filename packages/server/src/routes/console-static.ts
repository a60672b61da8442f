/**
 * Serves the built reviewer console at /console/ under a strict Content-Security-Policy
 * (THREATS.md D1, D7): scripts and styles from our origin only, no inline code, Trusted
 * Types enforced, no framing.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';

export const CONSOLE_DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../apps/console/dist');

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

export function consoleStaticRoutes(distDir = CONSOLE_DIST): Hono {
  const app = new Hono();
  app.use('/console/*', async (c, next) => {
    await next();
    c.header('Content-Security-Policy', CONSOLE_CSP);
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cross-Origin-Opener-Policy', 'same-origin');
    c.header('Permissions-Policy', 'camera=(), microphone=(), geolocation=()');
  });
  app.get('/', (c) => c.redirect('/console/'));
  app.get('/console', (c) => c.redirect('/console/'));
  if (!existsSync(join(distDir, 'index.html'))) {
    app.get('/console/*', (c) =>
      c.text('The console is not built. Run `npm run build:console` (npm start does it for you).', 503),
    );
    return app;
  }
  app.use(
    '/console/*',
    serveStatic({
      root: distDir,
      rewriteRequestPath: (path) => path.replace(/^\/console/, ''),
    }),
  );
  // Hash routing: every other /console path is the app shell.
  app.get('/console/*', serveStatic({ path: join(distDir, 'index.html') }));
  return app;
}
