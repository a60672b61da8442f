/**
 * THREATS.md K3 and R8 for the credential proxy: no connection to a loopback, private,
 * link-local or otherwise non-public address unless the upstream's configuration allows it,
 * however the address is written, whatever the DNS answers, and whenever it changes.
 * A dual-stack listener counts every connection that would have reached this host.
 */
import { createServer, type Server } from 'node:net';
import { checkDestination, type Resolver } from '@countersign/server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, type TestAgent } from '../support/harness.js';
import { addCatalogEntries, addSecretFile, editConfig } from './kinds.js';

let listener: Server;
let port = 0;
let connections = 0;

beforeAll(async () => {
  listener = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  // `::` with IPv6 dual-stack: catches 127.0.0.0/8, ::1 and ::ffff:127.x on this port.
  await new Promise<void>((resolve) => listener.listen(0, '::', resolve));
  port = (listener.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => listener.close(() => resolve()));
});

/** Every way of writing a loopback, private, link-local or otherwise non-public host we know. */
function hostileUrls(p: number): string[] {
  const urls = new Set<string>();
  for (const scheme of ['https', 'http']) {
    for (const host of [
      '127.0.0.1',
      '127.1',
      '127.0.1',
      '127.000.000.001',
      '2130706433',
      '0x7f000001',
      '0x7f.1',
      '0x7f.0.0.1',
      '0177.0.0.1',
      '0177.1',
      '017700000001',
      '0x7F.0x00.0x00.0x01',
      '127.0.0.2',
      '127.1.2.3',
      '127.255.255.254',
      'localhost',
      'LOCALHOST',
      'localhost.',
      'LocalHost',
      '0',
      '0.0.0.0',
      '0x0',
      '00',
      '[::]',
      '[::1]',
      '[0:0:0:0:0:0:0:1]',
      '[::ffff:127.0.0.1]',
      '[::ffff:7f00:1]',
      '[0:0:0:0:0:ffff:127.0.0.1]',
      '[::ffff:0:7f00:1]',
      '[::127.0.0.1]',
      '[64:ff9b::7f00:1]',
      '[2002:7f00:1::]',
      '[2001::1]',
      '[fe80::1]',
      '[fc00::1]',
      '[fd12:3456::1]',
      '[ff02::1]',
      '10.0.0.1',
      '10.255.255.255',
      '172.16.0.1',
      '172.31.255.254',
      '192.168.0.1',
      '192.168.255.255',
      '169.254.169.254',
      '169.254.0.1',
      '100.64.0.1',
      '100.127.255.254',
      '224.0.0.1',
      '239.255.255.250',
      '255.255.255.255',
      '192.0.0.1',
      '192.0.2.1',
      '198.18.0.1',
      '198.51.100.1',
      '203.0.113.1',
      '240.0.0.1',
      '0xa9.0xfe.0xa9.0xfe',
      '2852039166',
      '0251.0376.0251.0376',
      '[::ffff:169.254.169.254]',
      '[::ffff:a9fe:a9fe]',
      '[::ffff:10.0.0.1]',
      '[::ffff:192.168.1.1]',
      '167772161',
      '3232235777',
      '0xc0a80001',
    ]) {
      urls.add(`${scheme}://${host}:${p}/`);
    }
  }
  return [...urls];
}

/** Names that resolve (through a stub resolver) to non-public addresses, alone or mixed with public ones. */
const HOSTILE_ANSWERS: string[][] = [
  ['127.0.0.1'],
  ['::1'],
  ['10.1.2.3'],
  ['172.20.0.5'],
  ['192.168.1.10'],
  ['169.254.169.254'],
  ['100.64.1.1'],
  ['fd00::1'],
  ['fe80::1'],
  ['::ffff:127.0.0.1'],
  ['::ffff:10.0.0.1'],
  ['0.0.0.0'],
  ['::'],
  ['224.0.0.251'],
  ['64:ff9b::a00:1'],
  ['2002:a00:1::'],
  ['::7f00:1'],
  ['2001:db8::1'],
  ['198.18.0.1'],
  ['93.184.216.34', '127.0.0.1'],
  ['127.0.0.1', '93.184.216.34'],
  ['2606:4700::1111', 'fd00::1'],
  ['93.184.216.34', '::ffff:169.254.169.254'],
  ['8.8.8.8', '10.0.0.1', '1.1.1.1'],
];

describe('K3 R8 proxy destinations', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('K3 R8 at least 150 encodings of non-public hosts are refused before any connection', async () => {
    const urls = hostileUrls(port);
    let refused = 0;
    const resolve: Resolver = async () => [{ address: '127.0.0.1', family: 4 }]; // localhost and friends
    for (const url of urls) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        refused++; // not even a URL: never reaches a socket
        continue;
      }
      await expect(checkDestination(parsed, { allowPrivate: false, resolve }), url).rejects.toMatchObject({
        code: 'CS_PROXY_DESTINATION_REFUSED',
      });
      refused++;
    }
    for (const answer of HOSTILE_ANSWERS) {
      const stub: Resolver = async () => answer.map((a) => ({ address: a, family: a.includes(':') ? 6 : 4 }));
      await expect(
        checkDestination(new URL(`https://api.example.test:${port}/`), {
          allowPrivate: false,
          resolve: stub,
        }),
        answer.join(','),
      ).rejects.toMatchObject({ code: 'CS_PROXY_DESTINATION_REFUSED' });
      refused++;
    }
    expect(refused).toBeGreaterThanOrEqual(150);
    console.log(`R8: ${refused} hostile destinations refused, ${connections} connections`);
    expect(connections).toBe(0);
    // Public unicast addresses pass the check (nothing connects here: the check only).
    const publicStub: Resolver = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '2606:4700::1111', family: 6 },
    ];
    await expect(
      checkDestination(new URL('https://api.example.test/'), { allowPrivate: false, resolve: publicStub }),
    ).resolves.toEqual({ address: '93.184.216.34', family: 4 });
  });

  it('K3 through the proxy: by default a loopback upstream is refused, however written, and a hostile DNS answer too; zero connections', async () => {
    let answers: string[][] = [];
    let resolutions = 0;
    const resolver: Resolver = async (host) => {
      resolutions++;
      if (host === 'localhost') return [{ address: '127.0.0.1', family: 4 }];
      const next = answers.shift() ?? ['127.0.0.1'];
      return next.map((a) => ({ address: a, family: a.includes(':') ? 6 : 4 }));
    };
    const hosts = [
      '127.0.0.1',
      '2130706433',
      '0x7f.1',
      '[::1]',
      '[::ffff:127.0.0.1]',
      'localhost',
      '127.1',
      '0177.0.0.1',
    ];
    h = await startHarness({
      overrides: { resolver },
      configure: (home) => {
        const secret = addSecretFile(home, 'ssrf.token', 'ssrf-secret');
        const upstreams: Record<string, unknown> = {};
        hosts.forEach((host, i) => {
          upstreams[`lo${i}`] = {
            url: `https://${host}:${port}/`,
            inject: { type: 'bearer', secret_file: secret },
          };
        });
        upstreams.named = {
          url: `https://api.example.test:${port}/`,
          inject: { type: 'bearer', secret_file: secret },
        };
        editConfig(home, (c) => {
          c.issuers = { api: { kind: 'proxy', upstreams } };
        });
        addCatalogEntries(
          home,
          [...hosts.map((_, i) => `lo${i}`), 'named']
            .map(
              (u) => `  - pattern: https://${u}/*
    sensitivity: internal
    environment: staging
    owner: app
    boundary: acme
    issuer: api
`,
            )
            .join(''),
        );
      },
    });
    const agent: TestAgent = await h.addAgent('ssrf-bot', { environment: 'staging' });
    const tokenFor = async (upstream: string) =>
      (
        await h!.requestAccess(agent, {
          action: 'read',
          resource: `https://${upstream}/x`,
          intent: { purpose: 'p', task_id: upstream },
        })
      ).json.credential.access_token as string;
    let refusedCalls = 0;
    for (let i = 0; i < hosts.length; i++) {
      const res = await h.call('GET', `/proxy/lo${i}/x`, { token: await tokenFor(`lo${i}`) });
      expect(res.status, hosts[i]).toBe(403);
      expect(((await res.json()) as any).error.code).toBe('CS_PROXY_DESTINATION_REFUSED');
      refusedCalls++;
    }
    // The named upstream, with every hostile answer in turn: each call resolves once, is refused.
    const named = await tokenFor('named');
    answers = [...HOSTILE_ANSWERS];
    const before = resolutions;
    for (let i = 0; i < HOSTILE_ANSWERS.length; i++) {
      const res = await h.call('GET', '/proxy/named/x', { token: named });
      expect(res.status, HOSTILE_ANSWERS[i]!.join(',')).toBe(403);
      refusedCalls++;
    }
    expect(resolutions - before).toBe(HOSTILE_ANSWERS.length);
    expect(refusedCalls).toBe(hosts.length + HOSTILE_ANSWERS.length);
    expect(connections).toBe(0);
  });

  it('K3 DNS rebinding: the answer that was checked is the address connected to, even if the next answer is loopback', async () => {
    let resolutions = 0;
    // First answer public (passes the check), every later one loopback (where our listener waits).
    const resolver: Resolver = async () =>
      resolutions++ === 0 ? [{ address: '93.184.216.34', family: 4 }] : [{ address: '127.0.0.1', family: 4 }];
    h = await startHarness({
      overrides: { resolver },
      configure: (home) => {
        const secret = addSecretFile(home, 'ssrf.token', 'ssrf-secret');
        editConfig(home, (c) => {
          c.issuers = {
            api: {
              kind: 'proxy',
              upstreams: {
                flip: {
                  url: `https://rebind.example.test:${port}/`,
                  inject: { type: 'bearer', secret_file: secret },
                  timeout: '2s',
                },
              },
            },
          };
        });
        addCatalogEntries(
          home,
          `  - pattern: https://flip/*
    sensitivity: internal
    environment: staging
    owner: app
    boundary: acme
    issuer: api
`,
        );
      },
    });
    const agent = await h.addAgent('rebind-bot', { environment: 'staging' });
    const { json } = await h.requestAccess(agent, {
      action: 'read',
      resource: 'https://flip/x',
      intent: { purpose: 'p', task_id: 't' },
    });
    const res = await h.call('GET', '/proxy/flip/x', { token: json.credential.access_token });
    // It went to the checked (unreachable here) public address, and failed there.
    expect(res.status).toBe(502);
    expect(resolutions).toBe(1);
    expect(connections).toBe(0);
  });
});
