import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  fixedResource,
  GatewayError,
  loadGatewayConfig,
  mapResource,
  parseGatewayConfig,
  ResourceMappingError,
} from '../src/index.js';

const base = {
  server: 'http://localhost:8787',
  agents: { coder: { id: 'coding-agent', private_key_file: 'coder.jwk' } },
  upstreams: { github: { command: 'github-mcp-server', args: ['stdio'] } },
  stdio: { agent: 'coder' },
};

function refusal(value: unknown): GatewayError {
  try {
    parseGatewayConfig(value, '/etc/countersign');
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('the config was accepted');
}

describe('gateway config', () => {
  it('accepts a minimal config, fills defaults and resolves files against the config directory', () => {
    const config = parseGatewayConfig(base, '/etc/countersign');
    expect(config.agents.coder!.private_key_file).toBe('/etc/countersign/coder.jwk');
    expect(config.agents.coder!.dpop).toBe(false);
    expect(config.tool_chain_length).toBe(8);
    expect(config.purpose_argument).toBe('purpose');
    expect(config.upstreams.github).toMatchObject({ command: 'github-mcp-server', args: ['stdio'], env: {} });
  });

  it('hide_forbidden: off by default, a boolean for the gateway and per upstream, nothing else', () => {
    expect(parseGatewayConfig(base, '/etc').hide_forbidden).toBe(false);
    const on = parseGatewayConfig(
      {
        ...base,
        hide_forbidden: true,
        upstreams: { github: { command: 'x', hide_forbidden: false } },
      },
      '/etc',
    );
    expect(on.hide_forbidden).toBe(true);
    expect(on.upstreams.github!.hide_forbidden).toBe(false);
    expect(parseGatewayConfig(base, '/etc').upstreams.github!.hide_forbidden).toBeUndefined();
    expect(refusal({ ...base, hide_forbidden: 'yes' }).code).toBe('CS_GATEWAY_CONFIG_INVALID');
    expect(refusal({ ...base, hide_forbidden: 'yes' }).message).toMatch(/hide_forbidden/);
  });

  it('hide_forbidden asks about the resource every call names, or nothing when it comes from arguments', () => {
    expect(fixedResource(undefined, 'docs', 'search')).toBe('mcp://docs/search');
    expect(fixedResource('github://acme/payments', 'github', 'delete_repo')).toBe('github://acme/payments');
    expect(fixedResource('github://{owner}/{repo}', 'github', 'delete_repo')).toBeNull();
  });

  it.each([
    ['no transport', { ...base, stdio: undefined }, '(top): give `stdio`, `http` or both'],
    [
      'an unknown agent on stdio',
      { ...base, stdio: { agent: 'nobody' } },
      'stdio.agent: no agent named nobody',
    ],
    [
      'an unknown agent on a route',
      { ...base, http: { routes: [{ path: '/mcp', agent: 'ghost' }] } },
      'http.routes.0.agent: no agent named ghost',
    ],
    [
      'the same path twice',
      {
        ...base,
        http: {
          routes: [
            { path: '/mcp', agent: 'coder' },
            { path: '/mcp', agent: 'coder' },
          ],
        },
      },
      'http.routes.1.path: path given twice',
    ],
    [
      'two token sources',
      { ...base, agents: { coder: { id: 'a', private_key_file: 'k', token_file: 't' } } },
      'agents.coder: give exactly one of private_key_file, token_file, token_env',
    ],
    [
      'a private key without an id',
      { ...base, agents: { coder: { private_key_file: 'k' } } },
      'agents.coder.id: id is required with private_key_file',
    ],
    [
      'an upstream with both command and url',
      { ...base, upstreams: { github: { command: 'x', url: 'http://x' } } },
      'upstreams.github',
    ],
    ['an upper-case upstream name', { ...base, upstreams: { GitHub: { command: 'x' } } }, 'upstreams.GitHub'],
    [
      'a resource template without a scheme',
      { ...base, upstreams: { github: { command: 'x', tools: { create_pr: { resource: '{repo}' } } } } },
      'upstreams.github.tools.create_pr.resource: a resource template starts with scheme://',
    ],
    [
      'a stray brace in a template',
      {
        ...base,
        upstreams: { github: { command: 'x', tools: { create_pr: { resource: 'github://{repo' } } } },
      },
      'placeholders are {argument_name}',
    ],
    ['an unknown field', { ...base, hide_everything: true }, 'hide_everything'],
    ['a server that is not a URL', { ...base, server: 'localhost:8787' }, 'server:'],
  ])('refuses %s with CS_GATEWAY_CONFIG_INVALID naming the field', (_name, value, message) => {
    const error = refusal(value);
    expect(error.code).toBe('CS_GATEWAY_CONFIG_INVALID');
    expect(error.message).toContain(message);
  });

  it('a missing file and bad YAML (duplicate keys too) have their own codes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gateway-config-'));
    expect(() => loadGatewayConfig(join(dir, 'absent.yaml'))).toThrow(
      expect.objectContaining({ code: 'CS_GATEWAY_CONFIG_UNREADABLE' }),
    );
    const dup = join(dir, 'dup.yaml');
    writeFileSync(dup, 'server: http://a\nserver: http://b\n');
    expect(() => loadGatewayConfig(dup)).toThrow(
      expect.objectContaining({ code: 'CS_GATEWAY_CONFIG_INVALID' }),
    );
    const ok = join(dir, 'gateway.yaml');
    writeFileSync(
      ok,
      'server: http://localhost:8787\nagents: { coder: { token_file: token } }\nupstreams: { docs: { url: "http://127.0.0.1:9000/mcp" } }\nhttp: { routes: [{ path: /mcp, agent: coder }] }\n',
    );
    const config = loadGatewayConfig(ok);
    expect(config.agents.coder!.token_file).toBe(join(dir, 'token'));
    expect(config.http).toMatchObject({ host: 'localhost', port: 8788 });
  });
});

describe('F2 resource mapping from arguments', () => {
  const template = 'github://{repo}@{branch}';

  it('fills placeholders from plain path arguments, and defaults to mcp://<upstream>/<tool>', () => {
    expect(mapResource(template, 'github', 'create_pr', { repo: 'acme/payments', branch: 'main' })).toBe(
      'github://acme/payments@main',
    );
    expect(mapResource('tracker://acme/{issue}', 'jira', 'get', { issue: 1234 })).toBe('tracker://acme/1234');
    expect(mapResource(undefined, 'docs', 'search', { query: 'x' })).toBe('mcp://docs/search');
  });

  it.each([
    ['a parent segment', { repo: 'acme/../secrets', branch: 'main' }],
    ['a current segment', { repo: 'acme/./payments', branch: 'main' }],
    ['an empty segment', { repo: 'acme//payments', branch: 'main' }],
    ['an @ (would move the branch)', { repo: 'acme/payments@prod', branch: 'main' }],
    ['a percent escape', { repo: 'acme/%2e%2e', branch: 'main' }],
    ['a scheme', { repo: 'https://evil.example/x', branch: 'main' }],
    ['a query', { repo: 'acme/payments?x=1', branch: 'main' }],
    ['a backslash', { repo: 'acme\\payments', branch: 'main' }],
    ['fullwidth dots', { repo: 'acme/．．', branch: 'main' }],
    ['a newline', { repo: 'acme/payments\n', branch: 'main' }],
    ['an object', { repo: { toString: 'acme' }, branch: 'main' }],
    ['a missing argument', { repo: 'acme/payments' }],
    ['a fraction', { repo: 'acme/payments', branch: 1.5 }],
  ])('refuses %s', (_name, args) => {
    expect(() => mapResource(template, 'github', 'create_pr', args as Record<string, unknown>)).toThrow(
      ResourceMappingError,
    );
  });

  it('reads only own arguments (no prototype lookups)', () => {
    expect(() => mapResource('x://{constructor}', 'a', 'b', {})).toThrow(ResourceMappingError);
  });
});
