/**
 * A real MCP server for the gateway tests (official v2 server SDK): tools with arguments,
 * one that crashes its process. Over stdio by default; `--http <port>` serves Streamable
 * HTTP instead (printing `listening <url>` on stdout). Every call it receives is appended to
 * $UPSTREAM_LOG as one JSON line, so a test sees exactly what was forwarded.
 */
import { appendFileSync } from 'node:fs';
import { serve } from '@hono/node-server';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { z } from 'zod';

function record(tool: string, args: unknown): void {
  const file = process.env.UPSTREAM_LOG;
  if (file) appendFileSync(file, `${JSON.stringify({ pid: process.pid, tool, args })}\n`);
}

function build(): McpServer {
  const server = new McpServer({ name: 'acme-test-upstream', version: '1.0.0' });
  server.registerTool(
    'create_pr',
    {
      description: 'Open a pull request',
      inputSchema: z.object({
        repo: z.string(),
        branch: z.string(),
        title: z.string(),
        purpose: z.string().optional(),
      }),
    },
    async (args) => {
      record('create_pr', args);
      return {
        content: [
          { type: 'text', text: `created pull request "${args.title}" on ${args.repo}@${args.branch}` },
        ],
      };
    },
  );
  server.registerTool(
    'get_file',
    { description: 'Read a file', inputSchema: z.object({ repo: z.string(), path: z.string() }) },
    async (args) => {
      record('get_file', args);
      return { content: [{ type: 'text', text: `contents of ${args.repo}/${args.path}` }] };
    },
  );
  server.registerTool(
    'delete_repo',
    { description: 'Delete a repository', inputSchema: z.object({ repo: z.string() }) },
    async (args) => {
      record('delete_repo', args);
      return { content: [{ type: 'text', text: `deleted ${args.repo}` }] };
    },
  );
  server.registerTool(
    'search',
    { description: 'Search the handbook', inputSchema: z.object({ query: z.string() }) },
    async (args) => {
      record('search', args);
      return { content: [{ type: 'text', text: `3 results for ${args.query}` }] };
    },
  );
  server.registerTool(
    'crash',
    {
      description: 'Exits the server process in the middle of the call',
      inputSchema: z.object({ code: z.number() }),
    },
    async (args) => {
      record('crash', args);
      process.exit(args.code);
    },
  );
  return server;
}

const httpAt = process.argv.indexOf('--http');
if (httpAt > 0) {
  const handler = createMcpHandler(() => build());
  const port = Number(process.argv[httpAt + 1] ?? 0);
  const http = serve({ fetch: (request) => handler.fetch(request), port, hostname: '127.0.0.1' });
  http.once('listening', () => {
    const address = http.address() as { port: number };
    process.stdout.write(`listening http://127.0.0.1:${address.port}/mcp\n`);
  });
} else {
  serveStdio(() => build());
}
