/**
 * `countersign mcp-gateway --config gateway.yaml`: the MCP gateway over stdio and/or
 * Streamable HTTP, as the config says. stdout belongs to MCP when stdio is served: everything
 * else goes to stderr. Loaded on demand, so other commands never pay for the MCP SDK.
 */
export interface McpGatewayCommandOptions {
  readonly config: string;
  /** Serve only this transport even if the config has both. */
  readonly only?: 'stdio' | 'http';
}

export interface RunningMcpGateway {
  /** The HTTP base URL, when HTTP is served. */
  readonly url: string | null;
  /** Resolves when the stdio client went away (never, when stdio is not served). */
  readonly stdioClosed: Promise<void>;
  close(): Promise<void>;
}

export async function mcpGatewayCommand(options: McpGatewayCommandOptions): Promise<RunningMcpGateway> {
  const { GatewayError, loadGatewayConfig, McpGateway, listenHttp, serveGatewayStdio } = await import(
    '@countersign/mcp-gateway'
  );
  const config = loadGatewayConfig(options.config);
  // Otherwise the process would run and serve nothing.
  if (options.only && !config[options.only])
    throw new GatewayError(
      'CS_GATEWAY_CONFIG_INVALID',
      `--only ${options.only}: the config has no \`${options.only}\` section`,
    );
  if (options.only === 'stdio') delete (config as { http?: unknown }).http;
  if (options.only === 'http') delete (config as { stdio?: unknown }).stdio;
  const log = (line: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
  const gateway = new McpGateway(config, { log });
  const http = config.http ? await listenHttp(gateway) : null;
  if (http) {
    const paths = config.http!.routes.map((r) => `${http.url}${r.path} (agent ${r.agent})`).join(', ');
    log({ msg: `MCP gateway listening: ${paths}` });
  }
  const stdio = config.stdio ? serveGatewayStdio(gateway) : null;
  if (stdio) log({ msg: `MCP gateway serving stdio (agent ${config.stdio!.agent})` });
  return {
    url: http?.url ?? null,
    stdioClosed: stdio?.closed ?? new Promise<void>(() => {}),
    async close() {
      await stdio?.close();
      await http?.close();
      await gateway.close();
    },
  };
}
