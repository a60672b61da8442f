/**
 * One upstream MCP server, reached with the official MCP client over stdio (a command the
 * gateway starts) or Streamable HTTP. Connects lazily, reconnects on the next call after the
 * server went away (a crashed process is reported to the caller as a tool error, never hidden).
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { CallToolResult, Tool } from '@modelcontextprotocol/server';
import type { UpstreamConfig } from './config.js';

export const GATEWAY_NAME = 'countersign-mcp-gateway';
export const GATEWAY_VERSION = '0.1.0';

export class Upstream {
  #client: Client | null = null;
  #connecting: Promise<Client> | null = null;
  #tools: Tool[] = [];
  /** Why the last connection ended, shown in the next failure. */
  #lastClose: string | null = null;

  constructor(
    readonly name: string,
    readonly config: UpstreamConfig,
  ) {}

  get tools(): readonly Tool[] {
    return this.#tools;
  }

  #connect(): Promise<Client> {
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= (async () => {
      const client = new Client({ name: GATEWAY_NAME, version: GATEWAY_VERSION });
      const transport =
        'command' in this.config
          ? new StdioClientTransport({
              command: this.config.command,
              args: this.config.args,
              env: { ...getDefaultEnvironment(), ...this.config.env },
              ...(this.config.cwd ? { cwd: this.config.cwd } : {}),
              stderr: 'inherit',
            })
          : new StreamableHTTPClientTransport(new URL(this.config.url), {
              requestInit: { headers: this.config.headers },
            });
      client.onclose = () => {
        if (this.#client === client) {
          this.#client = null;
          this.#lastClose = 'the upstream connection closed (its process exited or the server went away)';
        }
      };
      try {
        await client.connect(transport);
      } catch (error) {
        await client.close().catch(() => {});
        throw error;
      }
      this.#client = client;
      return client;
    })().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  /** Lists the upstream's tools (all pages) and remembers them. */
  async listTools(): Promise<readonly Tool[]> {
    const client = await this.#connect();
    const tools: Tool[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor === undefined ? {} : { cursor });
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor);
    this.#tools = tools;
    return tools;
  }

  /** Calls one tool with exactly these arguments. */
  async callTool(tool: string, args: Record<string, unknown>, signal: AbortSignal): Promise<CallToolResult> {
    const client = await this.#connect();
    return (await client.callTool(
      { name: tool, arguments: args },
      { signal, timeout: this.config.call_timeout_seconds * 1000 },
    )) as CallToolResult;
  }

  describeFailure(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    return this.#lastClose && !this.#client ? `${this.#lastClose}: ${message}` : message;
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    await client?.close().catch(() => {});
  }
}
