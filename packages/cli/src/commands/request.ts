import { type AccessRequestParams, CountersignClient } from '@countersign/sdk';
import { readAgentKey } from './agent.js';

export interface RequestOptions {
  readonly server: string;
  readonly agent: string;
  readonly key: string;
  readonly action: string;
  readonly resource: string;
  readonly purpose: string;
  readonly task: string;
  readonly ticket?: string;
  readonly env?: string;
  readonly ttl?: number;
  readonly wait?: number;
}

export function clientFor(server: string, agent: string, keyFile: string): CountersignClient {
  const { agentId, privateJwk } = readAgentKey(keyFile);
  if (agentId !== undefined && agentId !== agent) {
    throw new Error(`the key file ${keyFile} belongs to agent ${agentId}, not ${agent}`);
  }
  return new CountersignClient({ server, agentId: agent, privateJwk });
}

/** Asks for access as an agent would; with `wait`, waits for a pending review to end. */
export async function requestCommand(options: RequestOptions): Promise<Record<string, any>> {
  const client = clientFor(options.server, options.agent, options.key);
  const params: AccessRequestParams = {
    action: options.action,
    resource: options.resource,
    intent: {
      purpose: options.purpose,
      task_id: options.task,
      ...(options.ticket ? { ticket: options.ticket } : {}),
    },
    context: options.env ? { environment: options.env } : {},
    ...(options.ttl !== undefined ? { ttl_seconds: options.ttl } : {}),
  };
  let answer = await client.submitAccessRequest(params);
  let remaining = options.wait ?? 0;
  while (answer.status === 'pending' && remaining > 0) {
    const step = Math.min(60, remaining);
    answer = await client.getRequest(answer.id, step);
    remaining -= step;
  }
  return answer;
}
