/** Opens the local data dir as a library (no HTTP): for operator commands on this host. */
import { type CountersignServer, createServer, DEFAULT_PORT, loadConfig } from '@countersign/server';
import { isInitialised } from './home.js';

export async function openLocal(home: string): Promise<CountersignServer> {
  if (!isInitialised(home)) {
    throw new Error(
      `no countersign.yaml in ${home}: run \`countersign init\` or \`npm start\` first (or set COUNTERSIGN_HOME)`,
    );
  }
  const port = Number(process.env.PORT ?? DEFAULT_PORT);
  return createServer(
    loadConfig({
      home,
      port,
      ...(process.env.COUNTERSIGN_URL ? { issuer: process.env.COUNTERSIGN_URL } : {}),
    }),
    // One command, a handful of writes: no writer thread to start.
    { logLevel: 'silent', sqliteWriter: 'inline' },
  );
}
