/**
 * Hostile JSON at the front door (THREATS.md E4-E7, A5, D4): size before parse, depth before
 * recursion, strict UTF-8 and numbers, no prototype keys, no duplicate keys, strict schema.
 * Every refusal must carry its stable code and leave no request, lease or credential behind.
 */
import { LIMITS } from '@countersign/protocol';
import { parseJsonBody } from '@countersign/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, type Harness, startHarness, type TestAgent } from '../support/harness.js';
import { dbCounts, expectRefused, refusal } from './attack-kit.js';

const LIMIT = LIMITS.bodyBytes; // 64 KiB
const INVALID = ['CS_INVALID_REQUEST', 'CS_INVALID_RESOURCE', 'CS_INVALID_IDENTIFIER'] as const;

/** A valid body as raw text, with `extra` spliced in as further top-level members. */
const rawBody = (extra = '', intentExtra = '', purpose = '"Reconcile orders"') =>
  `{"action":"read","resource":"postgres://staging/app/orders","intent":{"purpose":${purpose},"task_id":"task-1"${intentExtra}}${extra}}`;

/** A body whose total nesting depth is exactly `depth` (the top-level object counts as 1). */
const nestedBody = (depth: number, open = '[', close = ']') =>
  rawBody(`,"x":${open.repeat(depth - 1)}${close.repeat(depth - 1)}`);

const padTo = (text: string, bytes: number) => {
  const have = Buffer.byteLength(text);
  if (have > bytes) throw new Error(`already ${have} bytes`);
  // JSON allows insignificant whitespace: pad inside the top-level object.
  return `${text.slice(0, -1)}${' '.repeat(bytes - have)}}`;
};

describe('hostile JSON ingress', () => {
  let h: Harness;
  let agent: TestAgent;
  beforeAll(async () => {
    h = await startHarness();
    agent = await h.addAgent('spiffe://acme.dev/agent/ingress-bot', { owner: 'app' });
  });
  afterAll(async () => h.close());

  const post = (raw: string | Uint8Array, headers?: Record<string, string>) =>
    h.call('POST', '/v1/access-requests', { agent, rawBody: raw, ...(headers ? { headers } : {}) });

  /** Runs an attack and checks it left nothing behind in the store. */
  async function leavesNoTrace(attack: () => Promise<void>) {
    const before = dbCounts(h);
    await attack();
    const after = dbCounts(h);
    expect(after.requests).toBe(before.requests);
    expect(after.leases).toBe(before.leases);
  }

  async function expectAllowed(res: Response) {
    const text = await res.text();
    expect(res.status, text).toBe(201);
    const json = JSON.parse(text);
    expect(json.status, text).toBe('allowed');
    return json;
  }

  describe('E4 / D4 size limits', () => {
    it('E4 a schema-valid body of exactly 64 KiB (whitespace-padded) is accepted', async () => {
      const raw = padTo(rawBody(), LIMIT);
      expect(Buffer.byteLength(raw)).toBe(LIMIT);
      await expectAllowed(await post(raw));
    });

    it('E4 a body of 64 KiB - 1 is accepted', async () => {
      const raw = padTo(rawBody(), LIMIT - 1);
      await expectAllowed(await post(raw));
    });

    it('E4 a body of 64 KiB + 1 is refused with 413 CS_BODY_TOO_LARGE before parsing', async () => {
      await leavesNoTrace(async () => {
        const before = dbCounts(h);
        await expectRefused(await post(padTo(rawBody(), LIMIT + 1)), 413, 'CS_BODY_TOO_LARGE');
        // Refused before authentication: the assertion is not even consumed.
        expect(dbCounts(h).tokenIds).toBe(before.tokenIds);
      });
    });

    it('E4 the limit counts bytes, not characters (65,535 chars + one 2-byte char = 65,537 bytes)', async () => {
      const ascii = padTo(rawBody(), LIMIT - 1);
      const raw = ascii.replace('Reconcile orders', 'Reconcile ordersé');
      expect(raw.length).toBe(LIMIT);
      expect(Buffer.byteLength(raw)).toBe(LIMIT + 1);
      await leavesNoTrace(async () => {
        await expectRefused(await post(raw), 413, 'CS_BODY_TOO_LARGE');
      });
    });

    it('E4 an in-process Request whose Content-Length understates the body is still counted: 413', async () => {
      // Behind Node's server the parser frames the body by Content-Length; a Request built in
      // process (app.fetch embedded elsewhere) can claim anything, so its bytes are counted.
      const big = padTo(rawBody(), LIMIT + 1);
      const res = await post(big, { 'content-length': '10' });
      expect(res.status).toBe(413);
      expect((await refusal(res)).code).toBe('CS_BODY_TOO_LARGE');
    });

    it('E4 D4 a 10 MB intent is refused with 413 CS_BODY_TOO_LARGE', async () => {
      await leavesNoTrace(async () => {
        const raw = rawBody('', '', JSON.stringify('A'.repeat(10 * 1024 * 1024)));
        await expectRefused(await post(raw), 413, 'CS_BODY_TOO_LARGE');
      });
    });

    it('E4 an object with 100,000 keys is over the limit: 413 CS_BODY_TOO_LARGE', async () => {
      const keys = Array.from({ length: 100_000 }, (_, i) => `"k${i}":0`).join(',');
      await leavesNoTrace(async () => {
        await expectRefused(await post(rawBody(`,"context":{${keys}}`)), 413, 'CS_BODY_TOO_LARGE');
      });
    });

    it('E4 5,000 unknown keys under the limit are refused by the strict schema: 400 CS_INVALID_REQUEST', async () => {
      const keys = Array.from({ length: 5_000 }, (_, i) => `"k${i}":0`).join(',');
      const raw = rawBody(`,"context":{${keys}}`);
      expect(Buffer.byteLength(raw)).toBeLessThan(LIMIT);
      await leavesNoTrace(async () => {
        await expectRefused(await post(raw), 400, 'CS_INVALID_REQUEST');
      });
    });

    it('D4 purpose of 4,096 characters is accepted, 4,097 is refused with 400 CS_INVALID_REQUEST', async () => {
      await expectAllowed(
        await post(JSON.stringify(body({ intent: { purpose: 'p'.repeat(4096), task_id: 't' } }))),
      );
      await leavesNoTrace(async () => {
        const raw = JSON.stringify(body({ intent: { purpose: 'p'.repeat(4097), task_id: 't' } }));
        await expectRefused(await post(raw), 400, 'CS_INVALID_REQUEST');
      });
    });

    it('D4 a tool chain of 33 entries is refused with 400 CS_INVALID_REQUEST', async () => {
      const toolChain = Array.from({ length: 33 }, () => ({ tool: 'search' }));
      await leavesNoTrace(async () => {
        await expectRefused(
          await post(JSON.stringify(body({ context: { tool_chain: toolChain } }))),
          400,
          'CS_INVALID_REQUEST',
        );
      });
    });
  });

  describe('E5 nesting depth', () => {
    it('E5 depth 63 and 64 pass the JSON layer (the schema then refuses the unknown field, not CS_TOO_DEEP)', async () => {
      for (const depth of [63, 64]) {
        const r = await refusal(await post(nestedBody(depth)));
        expect(r.status, r.text).toBe(400);
        expect(r.code, r.text).not.toBe('CS_TOO_DEEP');
        expect(r.code, r.text).toBe('CS_INVALID_REQUEST');
      }
    });

    it('E5 depth 65 is refused with 400 CS_TOO_DEEP (arrays and objects)', async () => {
      await leavesNoTrace(async () => {
        await expectRefused(await post(nestedBody(65)), 400, 'CS_TOO_DEEP');
        const objects = rawBody(`,"x":${'{"a":'.repeat(64)}1${'}'.repeat(64)}`);
        await expectRefused(await post(objects), 400, 'CS_TOO_DEEP');
      });
    });

    it('E5 depth 32,000 (the deepest that fits in 64 KiB) is refused with 400 CS_TOO_DEEP', async () => {
      const raw = nestedBody(32_000);
      expect(Buffer.byteLength(raw)).toBeLessThanOrEqual(LIMIT);
      await leavesNoTrace(async () => {
        await expectRefused(await post(raw), 400, 'CS_TOO_DEEP');
      });
    });

    it('E5 depth 100,000 over HTTP is refused (413: it cannot fit in 64 KiB) and the process stays up', async () => {
      await expectRefused(await post(nestedBody(100_000)), 413, 'CS_BODY_TOO_LARGE');
      // Unbalanced, too: only openers.
      await expectRefused(await post(`{"x":${'['.repeat(100_000)}`), 413, 'CS_BODY_TOO_LARGE');
      await expectAllowed(await post(JSON.stringify(body())));
    });

    it('E5 depth 100,000 and 1,000,000 at the parser itself: CS_TOO_DEEP, no stack overflow', () => {
      for (const depth of [100_000, 1_000_000]) {
        const text = `${'['.repeat(depth)}${']'.repeat(depth)}`;
        expect(() => parseJsonBody(new TextEncoder().encode(text))).toThrow(
          expect.objectContaining({ code: 'CS_TOO_DEEP' }),
        );
        const objects = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
        expect(() => parseJsonBody(new TextEncoder().encode(objects))).toThrow(
          expect.objectContaining({ code: 'CS_TOO_DEEP' }),
        );
      }
    });

    it('E5 brackets inside strings (and behind escaped quotes) do not count as depth', async () => {
      const purpose = JSON.stringify(`\\"${'['.repeat(2000)}"${'{'.repeat(2000)}`);
      await expectAllowed(await post(rawBody('', '', purpose)));
    });

    it('E5 leading closers that hide depth from the scanner still end in a coded 400, not a stack overflow', () => {
      // The scanner sees a maximum depth of 10 here; the parser must fail before it recurses.
      for (const text of [
        `${']'.repeat(99_990)}${'['.repeat(100_000)}`,
        `[${'}'.repeat(99_990)}${'{"a":'.repeat(100_000)}`,
        `"x"${']'.repeat(99_990)}${'['.repeat(100_000)}`,
      ]) {
        expect(() => parseJsonBody(new TextEncoder().encode(text))).toThrow(
          expect.objectContaining({ code: expect.stringMatching(/^CS_(BAD_JSON|TOO_DEEP)$/) }),
        );
      }
    });

    it('E5 after all hostile depths a valid request still succeeds (process stays up)', async () => {
      await expectAllowed(await post(JSON.stringify(body())));
    });
  });

  describe('E6 malformed bytes, Unicode and numbers', () => {
    const withBytes = (bytes: number[]) => {
      const [head, tail] = rawBody().split('Reconcile orders') as [string, string];
      return new Uint8Array([...Buffer.from(head), ...bytes, ...Buffer.from(tail)]);
    };

    it('E6 invalid UTF-8 (truncated sequence, overlong "/", CESU surrogate, 0xFF) is 400 CS_BAD_JSON', async () => {
      const corpus = [
        [0xc3, 0x28],
        [0xc0, 0xaf],
        [0xe0, 0x80, 0xaf],
        [0xed, 0xa0, 0x80],
        [0xff],
        [0xf8, 0x88, 0x80, 0x80, 0x80],
      ];
      await leavesNoTrace(async () => {
        for (const bytes of corpus) await expectRefused(await post(withBytes(bytes)), 400, 'CS_BAD_JSON');
      });
    });

    it('E6 raw (unescaped) control characters inside a JSON string are 400 CS_BAD_JSON, not a 500', async () => {
      // RFC 8259 section 7: U+0000-U+001F must be escaped inside strings. momoa accepts them raw,
      // then the final JSON.parse in json-body.ts throws a SyntaxError that nothing maps: 500.
      await leavesNoTrace(async () => {
        for (const byte of [0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1b, 0x1f]) {
          const r = await refusal(await post(withBytes([0x52, byte, 0x52])));
          expect(r.status, `byte 0x${byte.toString(16)}: ${r.text}`).toBe(400);
          expect(r.code).toBe('CS_BAD_JSON');
        }
      });
    });

    it('E6 the parser maps every syntax failure to CS_BAD_JSON (never a bare SyntaxError)', () => {
      // TypeScript escapes: these strings hold the raw control characters themselves.
      for (const raw of ['{"a":"\u0000"}', '{"a":"x\ty"}', '{"a":"\u0001"}', '{"a":"\n"}']) {
        expect(() => parseJsonBody(new TextEncoder().encode(raw)), JSON.stringify(raw)).toThrow(
          expect.objectContaining({ code: 'CS_BAD_JSON' }),
        );
      }
    });

    it('E6 a UTF-8 byte order mark is 400 CS_BAD_JSON', async () => {
      const raw = new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from(rawBody())]);
      await leavesNoTrace(async () => {
        await expectRefused(await post(raw), 400, 'CS_BAD_JSON');
      });
    });

    it('E6 UTF-16 bodies (with or without a BOM) are refused', async () => {
      const utf16 = Buffer.from(rawBody(), 'utf16le');
      await leavesNoTrace(async () => {
        await expectRefused(await post(new Uint8Array(utf16)), 400, 'CS_BAD_JSON');
        await expectRefused(await post(new Uint8Array([0xff, 0xfe, ...utf16])), 400, 'CS_BAD_JSON');
      });
    });

    it('E6 lone surrogates are refused in every string field', async () => {
      const cases = [
        rawBody('', '', '"\\ud800"'),
        rawBody('', '', '"ok \\udc00 ok"'),
        rawBody('', '', '"\\ude00\\ud83d"'),
        rawBody(',"context":{"model_output":"\\ud800"}'),
        rawBody(',"context":{"tool_chain":[{"tool":"search","summary":"\\udbff"}]}'),
        rawBody(',"context":{"on_behalf_of":"u\\ud800"}'),
        rawBody('', ',"ticket":"T\\ud800"'),
        rawBody().replace('"action":"read"', '"action":"read\\ud800"'),
        rawBody().replace('orders"', 'orders\\ud800"'),
        rawBody(',"\\ud800":1'),
      ];
      await leavesNoTrace(async () => {
        for (const raw of cases) await expectRefused(await post(raw), 400, INVALID);
      });
    });

    it('E6 a well-formed surrogate pair (emoji) in purpose is accepted', async () => {
      await expectAllowed(await post(rawBody('', '', '"Reconcile \\ud83d\\ude00 orders"')));
    });

    it('E6 12345678901234567890 as ttl_seconds is 400 CS_UNSAFE_NUMBER (never silently rounded)', async () => {
      await leavesNoTrace(async () => {
        for (const n of ['12345678901234567890', '9007199254740993', '-9007199254740993', '1e300', '1e21']) {
          await expectRefused(await post(rawBody(`,"ttl_seconds":${n}`)), 400, 'CS_UNSAFE_NUMBER');
        }
      });
    });

    it('E6 1e400 and -1e400 (Infinity) are 400 CS_UNSAFE_NUMBER, also where the schema would not look', async () => {
      await leavesNoTrace(async () => {
        await expectRefused(await post(rawBody(',"ttl_seconds":1e400')), 400, 'CS_UNSAFE_NUMBER');
        await expectRefused(await post(rawBody(',"ttl_seconds":-1e400')), 400, 'CS_UNSAFE_NUMBER');
        await expectRefused(await post(rawBody(',"x":[[1e400]]')), 400, 'CS_UNSAFE_NUMBER');
      });
    });

    it('E6 NaN, Infinity, hex, leading zeros, trailing commas and comments are 400 CS_BAD_JSON', async () => {
      const cases = [
        rawBody(',"ttl_seconds":NaN'),
        rawBody(',"ttl_seconds":Infinity'),
        rawBody(',"ttl_seconds":0x10'),
        rawBody(',"ttl_seconds":010'),
        rawBody(',"ttl_seconds":+1'),
        rawBody(',"ttl_seconds":.5'),
        rawBody(',"ttl_seconds":60,'),
        `${rawBody()} // comment`,
        rawBody().replace('"action"', "'action'"),
        `${rawBody()}${rawBody()}`,
        '',
        'null',
      ];
      await leavesNoTrace(async () => {
        for (const raw of cases) {
          const r = await refusal(await post(raw));
          expect(r.status, raw.slice(-40)).toBe(400);
          expect(['CS_BAD_JSON', 'CS_INVALID_REQUEST'], raw.slice(-40)).toContain(r.code);
        }
      });
    });

    it('E6 -0, -0.0 and 0e0 as ttl_seconds are refused with 400, never 5xx', async () => {
      await leavesNoTrace(async () => {
        for (const n of ['-0', '-0.0', '0e0', '-0e-0', '1.5', '86401']) {
          await expectRefused(await post(rawBody(`,"ttl_seconds":${n}`)), 400, INVALID);
        }
      });
      // -0 where no number is expected is still only a schema refusal.
      await expectRefused(await post(rawBody(',"x":-0')), 400, 'CS_INVALID_REQUEST');
    });

    it('E6 equal canonical inputs give equal digests (key order, whitespace, escapes, 60 vs 6e1)', async () => {
      const a = `{"action":"read","resource":"postgres://staging/app/orders","intent":{"purpose":"digest é","task_id":"dg"},"ttl_seconds":60}`;
      const b = `{ "ttl_seconds" : 6e1 , "intent" : { "task_id" : "\\u0064g" , "purpose" : "digest \\u00e9" } ,\n "resource":"postgres:\\/\\/staging/app/orders","action":"\\u0072ead"}`;
      const ja = await expectAllowed(await post(a));
      const jb = await expectAllowed(await post(b));
      expect(jb.decision.request_digest).toBe(ja.decision.request_digest);
      const c = a.replace('digest é', 'digest e\\u0301'); // NFD: a different string, so a different digest
      const jc = await expectAllowed(await post(c));
      expect(jc.decision.request_digest).not.toBe(ja.decision.request_digest);
    });

    it('E6 a non-JSON Content-Type is 400 CS_BAD_JSON', async () => {
      await leavesNoTrace(async () => {
        for (const type of [
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data',
          'application/jsonx',
        ]) {
          await expectRefused(await post(rawBody(), { 'content-type': type }), 400, 'CS_BAD_JSON');
        }
      });
    });
  });

  describe('E7 prototype pollution and unknown fields', () => {
    const polluting = (key: string) => `{"${key}":{"isAdmin":true,"polluted":true}}`;

    it('E7 __proto__, constructor and prototype at the top level are 400 CS_FORBIDDEN_KEY', async () => {
      await leavesNoTrace(async () => {
        for (const key of ['__proto__', 'constructor', 'prototype']) {
          await expectRefused(await post(rawBody(`,"${key}":{"isAdmin":true}`)), 400, 'CS_FORBIDDEN_KEY');
          // First member, too: the check must not depend on position.
          await expectRefused(
            await post(`{"${key}":{"isAdmin":true},${rawBody().slice(1)}`),
            400,
            'CS_FORBIDDEN_KEY',
          );
        }
      });
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    });

    it('E7 forbidden keys nested in intent, context, tool chain entries and unknown fields are 400 CS_FORBIDDEN_KEY', async () => {
      const cases = [
        rawBody('', `,"__proto__":{"isAdmin":true}`),
        rawBody('', `,"constructor":{"prototype":{"isAdmin":true}}`),
        rawBody(`,"context":{"__proto__":{"isAdmin":true}}`),
        rawBody(`,"context":{"environment":"production","prototype":{}}`),
        rawBody(`,"context":{"tool_chain":[{"tool":"search","__proto__":{"isAdmin":true}}]}`),
        rawBody(`,"x":[[[${polluting('__proto__')}]]]`),
        rawBody(`,"x":{"y":{"z":${polluting('constructor')}}}`),
      ];
      await leavesNoTrace(async () => {
        for (const raw of cases) await expectRefused(await post(raw), 400, 'CS_FORBIDDEN_KEY');
      });
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('isAdmin');
    });

    it('E7 escaped spellings of forbidden keys ("\\u005f_proto__", "constructo\\u0072") are 400 CS_FORBIDDEN_KEY', async () => {
      await leavesNoTrace(async () => {
        await expectRefused(
          await post(rawBody(`,"\\u005f_proto__":{"isAdmin":true}`)),
          400,
          'CS_FORBIDDEN_KEY',
        );
        await expectRefused(await post(rawBody('', `,"constructo\\u0072":{}`)), 400, 'CS_FORBIDDEN_KEY');
        await expectRefused(await post(rawBody(`,"context":{"prot\\u006ftype":1}`)), 400, 'CS_FORBIDDEN_KEY');
      });
    });

    it('E7 the parser itself never pollutes Object.prototype', () => {
      for (const key of ['__proto__', 'constructor', 'prototype']) {
        expect(() => parseJsonBody(new TextEncoder().encode(polluting(key)))).toThrow(
          expect.objectContaining({ code: 'CS_FORBIDDEN_KEY' }),
        );
      }
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
      expect(Object.assign({}, { a: 1 }) as Record<string, unknown>).not.toHaveProperty('isAdmin');
    });

    it('E7 unknown fields at every level are 400 CS_INVALID_REQUEST', async () => {
      const cases = [
        rawBody(`,"is_admin":true`),
        rawBody(`,"role":"billing_admin"`),
        rawBody('', `,"approved_by":"security"`),
        rawBody(`,"context":{"role":"admin"}`),
        rawBody(`,"context":{"tool_chain":[{"tool":"search","trusted":true}]}`),
        rawBody(`,"decision":{"outcome":"allow"}`),
        rawBody(`,"status":"allowed"`),
        rawBody(`,"__proto":{}`),
        rawBody(`,"Action":"delete"`),
      ];
      await leavesNoTrace(async () => {
        for (const raw of cases) await expectRefused(await post(raw), 400, 'CS_INVALID_REQUEST');
      });
    });

    it('E7 non-object bodies (array, string, number, null) are 400', async () => {
      await leavesNoTrace(async () => {
        for (const raw of ['[]', `[${rawBody()}]`, '"read"', '42', 'true', 'null', '{}']) {
          const r = await refusal(await post(raw));
          expect(r.status, raw.slice(0, 30)).toBe(400);
          expect(INVALID as readonly string[]).toContain(r.code);
        }
      });
    });
  });

  it('E7 after every pollution attempt in this file ({}).isAdmin and ({}).polluted are undefined', () => {
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('isAdmin');
  });

  describe('A5 duplicate keys', () => {
    it('A5 {"action":"read","action":"delete",...} is 400 CS_DUPLICATE_KEY', async () => {
      await leavesNoTrace(async () => {
        const raw = rawBody().replace('"action":"read"', '"action":"read","action":"delete"');
        await expectRefused(await post(raw), 400, 'CS_DUPLICATE_KEY');
        const reversed = rawBody().replace('"action":"read"', '"action":"delete","action":"read"');
        await expectRefused(await post(reversed), 400, 'CS_DUPLICATE_KEY');
      });
    });

    it('A5 duplicates nested in intent, context, tool chain entries and ignored fields are 400 CS_DUPLICATE_KEY', async () => {
      const cases = [
        rawBody('', ',"task_id":"task-2"'),
        rawBody(',"context":{"environment":"staging","environment":"production"}'),
        rawBody(',"context":{"tool_chain":[{"tool":"a","source":"trusted","source":"untrusted"}]}'),
        rawBody(',"resource":"postgres://prod/billing/invoices"'),
        rawBody(',"x":[{"k":1,"k":2}]'),
      ];
      await leavesNoTrace(async () => {
        for (const raw of cases) await expectRefused(await post(raw), 400, 'CS_DUPLICATE_KEY');
      });
    });

    it('A5 duplicates spelled with escapes ("action" and "\\u0061ction") are 400 CS_DUPLICATE_KEY', async () => {
      await leavesNoTrace(async () => {
        const raw = rawBody().replace('"action":"read"', '"action":"read","\\u0061ction":"delete"');
        await expectRefused(await post(raw), 400, 'CS_DUPLICATE_KEY');
        const slash = rawBody(',"resource":"postgres:\\/\\/prod/billing/invoices"');
        await expectRefused(await post(slash), 400, 'CS_DUPLICATE_KEY');
      });
    });
  });
});
