/** The `countersign` command: a thin layer that parses flags and calls the libraries. */

import { DEFAULT_PORT } from '@countersign/server';
import { Command, InvalidArgumentError, Option } from 'commander';
import { agentAdd, agentList, agentSuspend, agentUnused } from './commands/agent.js';
import { auditVerify } from './commands/audit.js';
import { demoCommand } from './commands/demo.js';
import { initHome } from './commands/init.js';
import { leaseList, leaseRevoke } from './commands/lease.js';
import { mcpGatewayCommand } from './commands/mcp-gateway.js';
import { formatBacktest, policyBacktest, policyTest, policyValidate } from './commands/policy.js';
import { receiptVerify } from './commands/receipt.js';
import { clientFor, requestCommand } from './commands/request.js';
import { reviewerInvite, reviewerList, reviewerRemove } from './commands/reviewer.js';
import {
  readSecretFromStdin,
  secretKeygen,
  secretList,
  secretPut,
  secretRotateMasterKey,
} from './commands/secret.js';
import { serveCommand } from './commands/serve.js';
import { resolveHome, serverUrl } from './home.js';
import { printJson, reportError } from './output.js';

function wholeNumber(max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^[0-9]+$/.test(value) || n > max)
      throw new InvalidArgumentError(`expected a whole number from 0 to ${max}`);
    return n;
  };
}

export function buildProgram(exit: { code: number }): Command {
  const program = new Command('countersign')
    .description('Countersign: an access checkpoint for AI agents')
    .showHelpAfterError()
    .exitOverride();
  const home = new Option('--dir <dir>', 'data directory (default: $COUNTERSIGN_HOME or .countersign)');
  const server = new Option(
    '--server <url>',
    'Countersign server (default: $COUNTERSIGN_URL or http://localhost:8787)',
  );

  program
    .command('init')
    .description('create a data directory: config, example policies, schema, catalog, signing key')
    .addOption(home)
    .option('--dev', 'mark the data directory as dev mode', false)
    .action(async (o: { dir?: string; dev: boolean }) => {
      const dir = resolveHome(o.dir);
      const { created, existed } = await initHome({ home: dir, dev: o.dev });
      if (existed) {
        process.stderr.write(`${dir} is already initialised (countersign.yaml exists); nothing changed\n`);
        return;
      }
      process.stdout.write(`initialised ${dir}\n${created.map((f) => `  ${f}`).join('\n')}\n`);
      process.stdout.write('review policies/ and catalog.yaml, then run `countersign serve`\n');
    });

  program
    .command('serve')
    .description('run the server')
    .addOption(home)
    .addOption(
      new Option('--port <port>', 'port')
        .argParser(wholeNumber(65535))
        .default(Number(process.env.PORT ?? DEFAULT_PORT)),
    )
    .option('--host <host>', 'address to listen on', process.env.COUNTERSIGN_HOST ?? 'localhost')
    .option('--issuer <url>', 'external URL (the audience agents sign for)')
    .option('--dev', 'dev mode: initialise the data directory with examples if it is empty', false)
    .action(async (o: { dir?: string; port: number; host: string; issuer?: string; dev: boolean }) => {
      const running = await serveCommand({
        home: resolveHome(o.dir),
        port: o.port,
        host: o.host,
        dev: o.dev,
        ...(o.issuer ? { issuer: o.issuer } : {}),
      });
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.stderr.write('stopping\n');
          running.close().then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  program
    .command('mcp-gateway')
    .description('run the MCP gateway: every tools/call passes the checkpoint (stdio and/or Streamable HTTP)')
    .requiredOption('--config <file>', 'gateway config (YAML), see docs/mcp-gateway.md')
    .addOption(new Option('--only <transport>', 'serve only one transport').choices(['stdio', 'http']))
    .action(async (o: { config: string; only?: 'stdio' | 'http' }) => {
      let running: Awaited<ReturnType<typeof mcpGatewayCommand>>;
      try {
        running = await mcpGatewayCommand({ config: o.config, ...(o.only ? { only: o.only } : {}) });
      } catch (error) {
        const e = error as { name?: string; code?: string; message?: string };
        if (e.name !== 'GatewayError') throw error;
        process.stderr.write(`error ${e.code}: ${e.message}\n`);
        exit.code = 1;
        return;
      }
      await new Promise<void>((resolve) => {
        const stop = () => {
          running.close().then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        running.stdioClosed.then(stop);
      });
    });

  const agent = program.command('agent').description('manage agents (acts on the configured store)');
  agent
    .command('add <id>')
    .description(
      'register an agent; without --public-key or a workload identity, generate its Ed25519 key pair',
    )
    .requiredOption('--owner <team>', 'accountable owner (person or team)')
    .option('--boundary <org>', 'tenant or organisation boundary', 'acme')
    .option('--env <environment>', 'environment the agent runs in', 'production')
    .option('--trust-tier <tier>', 'trust tier', 'standard')
    .option('--public-key <file>', 'the agent’s public JWK (Ed25519)')
    .option(
      '--workload-issuer <iss>',
      'a trusted issuer (identity.trusted_issuers) whose token names this agent',
    )
    .option('--workload-subject <sub>', 'the token `sub` bound to this agent (one agent per identity)')
    .option('--expires <duration>', 'refuse the agent’s tokens after this long (e.g. 90d)')
    .addOption(home)
    .action(
      async (
        id: string,
        o: {
          owner: string;
          boundary: string;
          env: string;
          trustTier: string;
          publicKey?: string;
          workloadIssuer?: string;
          workloadSubject?: string;
          expires?: string;
          dir?: string;
        },
      ) => {
        const result = await agentAdd({
          home: resolveHome(o.dir),
          id,
          owner: o.owner,
          boundary: o.boundary,
          env: o.env,
          trustTier: o.trustTier,
          ...(o.publicKey ? { publicKey: o.publicKey } : {}),
          ...(o.workloadIssuer ? { workloadIssuer: o.workloadIssuer } : {}),
          ...(o.workloadSubject ? { workloadSubject: o.workloadSubject } : {}),
          ...(o.expires ? { expires: o.expires } : {}),
        });
        process.stdout.write(
          `registered agent ${result.id}${result.thumbprint ? ` (key thumbprint ${result.thumbprint})` : ''}${
            o.workloadIssuer ? ` bound to ${o.workloadSubject} of ${o.workloadIssuer}` : ''
          }${result.expiresAt ? `, expires ${new Date(result.expiresAt).toISOString()}` : ''}\n`,
        );
        if (result.keyFile)
          process.stdout.write(`private key written to ${result.keyFile} (mode 0600): keep it secret\n`);
      },
    );
  agent
    .command('list')
    .description('list registered agents')
    .addOption(home)
    .option('--json', 'print JSON', false)
    .action(async (o: { dir?: string; json: boolean }) => {
      const agents = await agentList(resolveHome(o.dir));
      if (o.json) return printJson(agents.map(({ publicJwk: _k, ...a }) => a));
      if (agents.length === 0)
        return void process.stdout.write('no agents yet: `countersign agent add <id> --owner <team>`\n');
      for (const a of agents) {
        const extra = [
          ...a.workloadIdentities.map((w) => `identity=${w.subject}@${w.issuer}`),
          a.expiresAt ? `expires=${new Date(a.expiresAt).toISOString()}` : '',
          `last_seen=${a.lastSeenAt ? new Date(a.lastSeenAt).toISOString() : 'never'}`,
        ].filter(Boolean);
        process.stdout.write(
          `${a.status.padEnd(9)} ${a.id}  owner=${a.owner} boundary=${a.boundary} env=${a.environment} ${extra.join(' ')}\n`,
        );
      }
    });
  agent
    .command('unused')
    .description('list agents with no authenticated call for N days (offboarding candidates)')
    .requiredOption('--days <n>', 'idle for at least this many days', wholeNumber(36_500))
    .option('--json', 'print JSON', false)
    .addOption(home)
    .action(async (o: { days: number; json: boolean; dir?: string }) => {
      const idle = await agentUnused(resolveHome(o.dir), o.days);
      if (o.json) return printJson(idle.map(({ publicJwk: _k, ...a }) => a));
      if (idle.length === 0) return void process.stdout.write(`no agent idle for ${o.days} days\n`);
      for (const a of idle) {
        process.stdout.write(
          `${a.id}  owner=${a.owner} status=${a.status} last_seen=${
            a.lastSeenAt ? new Date(a.lastSeenAt).toISOString() : 'never'
          } idle_since=${new Date(a.idleSince).toISOString()}\n`,
        );
      }
    });
  agent
    .command('suspend <id>')
    .description('kill switch: suspend the agent, revoke its leases, cancel its pending reviews')
    .option('--reason <text>', 'why')
    .addOption(home)
    .action(async (id: string, o: { reason?: string; dir?: string }) => {
      const r = await agentSuspend(resolveHome(o.dir), id, o.reason);
      process.stdout.write(
        `suspended ${id}: ${r.revokedLeases} lease(s) revoked, ${r.cancelledRequests} pending request(s) cancelled\n`,
      );
      if (r.pendingRevocations.length > 0) {
        process.stdout.write(
          `${r.pendingRevocations.length} downstream revocation(s) not confirmed yet: the server's reaper retries them (countersign lease list --status revoke_pending)\n`,
        );
      }
    });

  const reviewer = program
    .command('reviewer')
    .description('manage human reviewers (acts on the configured store)');
  reviewer
    .command('invite <email>')
    .description('print a one-time enrollment link (24 h) for a reviewer in the given groups')
    .requiredOption('--group <group...>', 'reviewer group(s), e.g. billing-oncall')
    .addOption(home)
    .action(async (email: string, o: { group: string[]; dir?: string }) => {
      const { link, expiresAt } = await reviewerInvite(resolveHome(o.dir), email, o.group);
      process.stdout.write(
        `invited ${email} (${o.group.join(', ')}); the link works once, until ${new Date(expiresAt).toISOString()}:\n${link}\n`,
      );
    });
  reviewer
    .command('list')
    .description('list reviewers')
    .addOption(home)
    .action(async (o: { dir?: string }) => {
      const reviewers = await reviewerList(resolveHome(o.dir));
      if (reviewers.length === 0)
        return void process.stdout.write(
          'no reviewers yet: `countersign reviewer invite <email> --group <g>`\n',
        );
      for (const r of reviewers) {
        process.stdout.write(
          `${r.status.padEnd(8)} ${r.email}  groups=${r.groups.join(',')} passkeys=${r.passkeys}\n`,
        );
      }
    });
  reviewer
    .command('remove <email>')
    .description('remove a reviewer: sessions end, their votes stop counting')
    .addOption(home)
    .action(async (email: string, o: { dir?: string }) => {
      await reviewerRemove(resolveHome(o.dir), email);
      process.stdout.write(`removed ${email}\n`);
    });

  const lease = program.command('lease').description('leases (acts on the configured store)');
  lease
    .command('list')
    .description('list leases, newest first: kind, state, agent, task, resource, revocation attempts')
    .option('--agent <id>', 'only this agent')
    .option('--task <id>', 'only this task')
    .option('--status <status...>', 'issuing, active, revoke_pending, revoked')
    .addOption(new Option('--limit <n>', 'at most this many').argParser(wholeNumber(10_000)).default(100))
    .option('--json', 'print JSON', false)
    .addOption(home)
    .action(
      async (o: {
        agent?: string;
        task?: string;
        status?: string[];
        limit: number;
        json: boolean;
        dir?: string;
      }) => {
        const leases = await leaseList(resolveHome(o.dir), {
          ...(o.agent ? { agent: o.agent } : {}),
          ...(o.task ? { task: o.task } : {}),
          ...(o.status ? { status: o.status } : {}),
          limit: o.limit,
        });
        if (o.json) return printJson(leases);
        if (leases.length === 0) return void process.stdout.write('no leases\n');
        for (const l of leases) {
          const revocation =
            l.status === 'revoke_pending'
              ? `  revocation pending: ${l.revoke_attempts} failed attempt(s), last ${l.last_revoke_error ?? '-'}, next ${l.next_revoke_at}`
              : '';
          process.stdout.write(
            `${l.state.padEnd(14)} ${l.lease_id}  ${l.kind}  ${l.agent_id}  task=${l.task_id}  ${l.action ?? ''} ${l.resource ?? ''}  expires ${l.expires_at}${revocation}\n`,
          );
        }
      },
    );
  lease
    .command('revoke <lease-id>')
    .description(
      'end a lease now; a downstream credential (a database role) is removed at once (exit 3 when the downstream has not confirmed)',
    )
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .addOption(home)
    .action(async (leaseId: string, o: { reason?: string; dir?: string }) => {
      const r = await leaseRevoke(resolveHome(o.dir), leaseId, o.reason);
      const lines = {
        revoked: `revoked ${leaseId}`,
        revoke_pending: `${leaseId} ended; its downstream did not confirm the revocation (${r.lease?.last_revoke_error ?? 'unknown'}): the server's reaper keeps retrying (countersign_revocations_failed)`,
        not_live: `${leaseId} was not live (${r.lease?.state}); nothing changed`,
      };
      process.stdout.write(`${lines[r.outcome]}\n`);
      if (r.outcome === 'revoke_pending') exit.code = 3;
    });

  const secret = program
    .command('secret')
    .description('sealed secrets (acts on the configured store; prefer the credential proxy)');
  secret
    .command('put <name>')
    .description('seal the value read from stdin as secret://<name> (a new version when it exists)')
    .addOption(home)
    .action(async (name: string, o: { dir?: string }) => {
      const r = await secretPut(resolveHome(o.dir), name, await readSecretFromStdin());
      process.stdout.write(
        `sealed secret://${r.name} version ${r.version} (master key ${r.keyId}, fingerprint ${r.fingerprint})\n`,
      );
    });
  secret
    .command('list')
    .description('list sealed secrets: names, versions, fingerprints (never values)')
    .addOption(home)
    .option('--json', 'print JSON', false)
    .action(async (o: { dir?: string; json: boolean }) => {
      const all = await secretList(resolveHome(o.dir));
      if (o.json) return printJson(all);
      if (all.length === 0) return void process.stdout.write('no sealed secrets\n');
      for (const s of all) {
        process.stdout.write(`secret://${s.name}  v${s.version}  key=${s.keyId}  ${s.fingerprint}\n`);
      }
    });
  secret
    .command('keygen')
    .description('write a new 256-bit master key to a file (mode 0600)')
    .requiredOption('--out <file>', 'where to write it (never overwritten)')
    .action((o: { out: string }) => {
      secretKeygen(o.out);
      process.stdout.write(
        `wrote a new master key to ${o.out} (mode 0600): point secrets.master_key_file at it, or load it into COUNTERSIGN_MASTER_KEY\n`,
      );
    });
  secret
    .command('rotate-master-key')
    .description(
      're-wrap every sealed secret under a new master key (generated when the file does not exist)',
    )
    .requiredOption('--new-key-file <file>', 'the new master key')
    .addOption(home)
    .action(async (o: { newKeyFile: string; dir?: string }) => {
      const r = await secretRotateMasterKey(resolveHome(o.dir), o.newKeyFile);
      process.stdout.write(
        `${r.generated ? `generated ${o.newKeyFile}; ` : ''}re-wrapped ${r.rewrapped} secret(s) under master key ${r.keyId}.\n` +
          'Restart every Countersign instance with the new key (secrets.master_key_file or COUNTERSIGN_MASTER_KEY);\n' +
          'until then releases fail closed. Then destroy the old key.\n',
      );
    });

  program
    .command('receipt')
    .description('approval receipts')
    .command('verify <file>')
    .description('verify an approval receipt (a JWS, or an agent answer carrying one) against the JWKS')
    .addOption(server)
    .action(async (file: string, o: { server?: string }) => {
      printJson(await receiptVerify(file, serverUrl(o.server)));
    });

  program
    .command('request')
    .description('ask for access as an agent (prints the decision as JSON)')
    .requiredOption('--agent <id>', 'agent id')
    .requiredOption('--key <file>', 'the agent’s private JWK file')
    .requiredOption('--action <action>', 'e.g. read, write, export')
    .requiredOption('--resource <uri>', 'e.g. postgres://staging/app/orders')
    .requiredOption('--purpose <text>', 'why (shown to reviewers as the agent’s claim)')
    .requiredOption('--task <id>', 'task id')
    .option('--ticket <id>', 'ticket reference')
    .option('--env <environment>', 'environment the agent says it acts in')
    .addOption(new Option('--ttl <seconds>', 'credential lifetime wanted').argParser(wholeNumber(86400)))
    .addOption(
      new Option('--wait <seconds>', 'wait this long for a pending review').argParser(wholeNumber(3600)),
    )
    .addOption(server)
    .action(async (o: Record<string, any>) => {
      const answer = await requestCommand({ ...o, server: serverUrl(o.server) } as never);
      printJson(answer);
      if (answer.status !== 'allowed') exit.code = answer.status === 'pending' ? 3 : 2;
    });

  const task = program.command('task').description('tasks (as an agent, over HTTP)');
  task
    .command('complete <task-id>')
    .description('complete a task: every lease it holds is revoked')
    .requiredOption('--agent <id>', 'agent id')
    .requiredOption('--key <file>', 'the agent’s private JWK file')
    .addOption(server)
    .action(async (taskId: string, o: { agent: string; key: string; server?: string }) => {
      printJson(await clientFor(serverUrl(o.server), o.agent, o.key).completeTask(taskId));
    });
  task
    .command('fail <task-id>')
    .description('end a task as failed: every lease it holds is revoked')
    .requiredOption('--agent <id>', 'agent id')
    .requiredOption('--key <file>', 'the agent’s private JWK file')
    .option('--reason <text>', 'why (kept in the audit trail as the agent’s claim)')
    .addOption(server)
    .action(async (taskId: string, o: { agent: string; key: string; reason?: string; server?: string }) => {
      printJson(await clientFor(serverUrl(o.server), o.agent, o.key).failTask(taskId, o.reason));
    });
  task
    .command('heartbeat <task-id>')
    .description('say the task is still running; prints its leases')
    .requiredOption('--agent <id>', 'agent id')
    .requiredOption('--key <file>', 'the agent’s private JWK file')
    .addOption(server)
    .action(async (taskId: string, o: { agent: string; key: string; server?: string }) => {
      printJson(await clientFor(serverUrl(o.server), o.agent, o.key).heartbeat(taskId));
    });

  program
    .command('audit')
    .description('audit chain')
    .command('verify')
    .description('verify the hash chain; exit 0 when intact, 1 naming the first broken event')
    .option('--expect-head <seq:hash>', 'a head recorded earlier: also detects removed newest events')
    .addOption(home)
    .action(async (o: { dir?: string; expectHead?: string }) => {
      const result = await auditVerify(resolveHome(o.dir), o.expectHead);
      if (result.ok) {
        process.stdout.write(
          `audit chain intact: ${result.count} events, head ${result.count}:${result.headHash}\n`,
        );
      } else {
        process.stderr.write(
          `audit chain BROKEN at event #${result.seq}${result.eventId ? ` (${result.eventId})` : ''}: ${result.reason}\n` +
            `${result.count} events before it verified\n`,
        );
        exit.code = 1;
      }
    });

  const policy = program.command('policy').description('policies');
  policy
    .command('validate')
    .description('check the policy set against the Cedar schema')
    .option('--policies <dir>', 'policy directory (default: the data directory’s)')
    .option('--schema <file>', 'Cedar schema file')
    .addOption(home)
    .action((o: { policies?: string; schema?: string; dir?: string }) => {
      const { dir, result } = policyValidate(resolveHome(o.dir), o.policies, o.schema);
      if (result.ok) {
        process.stdout.write(
          `${result.policyCount} policies in ${dir} are valid; version ${result.version}\n`,
        );
      } else {
        process.stderr.write(
          `policy set in ${dir} is INVALID:\n${result.errors.map((e) => `  ${e}`).join('\n')}\n`,
        );
        exit.code = 1;
      }
    });

  policy
    .command('test [dir]')
    .description('run policy test cases (YAML, default <policies>/tests) against the policy set')
    .option('--policies <dir>', 'policy directory (default: the data directory’s)')
    .option('--schema <file>', 'Cedar schema file (default: next to the policy directory)')
    .option('--catalog <file>', 'resource catalog (default: next to the policy directory)')
    .option('--json', 'print JSON', false)
    .addOption(home)
    .action(
      (
        testDir: string | undefined,
        o: { policies?: string; schema?: string; catalog?: string; json: boolean; dir?: string },
      ) => {
        const run = policyTest(resolveHome(o.dir), testDir, o);
        const failed = run.results.filter((r) => !r.passed);
        if (o.json) {
          printJson({
            policy_version: run.version,
            passed: run.results.length - failed.length,
            failed: failed.length,
            cases: run.results.map((r) => ({
              name: r.case.name,
              file: r.case.source,
              passed: r.passed,
              failures: r.failures,
              outcome: r.decision?.outcome ?? null,
            })),
          });
        } else {
          for (const r of run.results) {
            const tag = r.passed ? 'ok  ' : 'FAIL';
            const got = r.decision
              ? `${r.decision.outcome}${r.decision.obligations.reviewerGroup ? ` (${r.decision.obligations.reviewerGroup})` : ''}`
              : 'error';
            process.stdout.write(
              `${tag} ${r.case.source}: ${r.case.name} -> ${got}${r.passed ? '' : `: ${r.failures.join('; ')}`}\n`,
            );
          }
          process.stdout.write(
            `${run.results.length - failed.length} passed, ${failed.length} failed (${run.results.length} cases, policy version ${run.version})\n`,
          );
        }
        if (failed.length > 0) exit.code = 1;
      },
    );

  policy
    .command('backtest')
    .description("replay the data directory's recent requests against a candidate policy set")
    .requiredOption('--candidate <dir>', 'the candidate policy directory')
    .option('--since <duration>', 'how far back (e.g. 24h, 7d)', '7d')
    .option('--schema <file>', 'Cedar schema file (default: the data directory’s)')
    .option('--json', 'print JSON', false)
    .addOption(home)
    .action(async (o: { candidate: string; since: string; schema?: string; json: boolean; dir?: string }) => {
      const report = await policyBacktest(resolveHome(o.dir), o);
      if (o.json) printJson(report);
      else process.stdout.write(formatBacktest(report));
    });

  program
    .command('demo')
    .description('run a scripted agent against a running server (three outcomes, then task completion)')
    .addOption(home)
    .addOption(server)
    .action(async (o: { dir?: string; server?: string }) => {
      exit.code = await demoCommand({ home: resolveHome(o.dir), server: serverUrl(o.server) });
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const exit = { code: 0 };
  const program = buildProgram(exit);
  try {
    await program.parseAsync(argv);
    return exit.code;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help')
      return 0;
    if (typeof code === 'string' && code.startsWith('commander.')) return 2;
    return reportError(error);
  }
}
