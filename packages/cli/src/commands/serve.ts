import { createServer, loadConfig } from '@countersign/server';
import { serve as listen } from '@hono/node-server';
import { isInitialised } from '../home.js';
import { initHome } from './init.js';

export interface ServeOptions {
  readonly home: string;
  readonly port: number;
  readonly host: string;
  readonly dev: boolean;
  readonly issuer?: string;
}

const BANNER = `
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!  COUNTERSIGN IS RUNNING IN DEV MODE. DO NOT USE IT FOR REAL ACCESS.         !!
!!  - the signing key was generated on this machine and sits next to the data !!
!!  - example policies and an example resource catalog are loaded             !!
!!  - HTTP without TLS                                                         !!
!!  Run \`countersign init --dir <dir>\` and review every file before production. !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
`;

export async function serveCommand(options: ServeOptions): Promise<{ close(): Promise<void>; url: string }> {
  if (!isInitialised(options.home)) {
    if (!options.dev) {
      throw new Error(
        `no countersign.yaml in ${options.home}: run \`countersign init\` (or \`npm start\` for dev mode)`,
      );
    }
    const { created } = await initHome({ home: options.home, dev: true });
    process.stderr.write(`initialised dev data dir ${options.home} (${created.length} files)\n`);
  }
  const config = loadConfig({
    home: options.home,
    port: options.port,
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.dev ? { dev: true } : {}),
  });
  const server = await createServer(config);
  if (config.dev) process.stderr.write(BANNER);
  await server.recordStart();
  server.startBackground();
  // SIGHUP: read the policy directory now instead of at the next poll.
  process.on('SIGHUP', () => void server.reloadPolicies());
  const http = listen({ fetch: server.app.fetch, port: options.port, hostname: options.host });
  await new Promise<void>((resolve, reject) => {
    http.once('listening', () => resolve());
    http.once('error', reject);
  });
  const unready = server.deps.unready();
  server.deps.log.info(
    {
      url: config.issuer,
      listen: `${options.host}:${options.port}`,
      data_dir: options.home,
      store: server.deps.store.description,
      dev: config.dev,
      policy_version: server.deps.ctx.policy().version,
    },
    unready ? `Countersign started UNREADY: ${unready}` : 'Countersign is listening',
  );
  return {
    url: config.issuer,
    async close() {
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await server.close();
    },
  };
}
