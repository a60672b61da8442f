import type { AuditActor } from '../audit.js';
import type { AccessRequestRecord, AgentRecord } from '../records.js';

export function agentActor(agent: Pick<AgentRecord, 'id'>): AuditActor {
  return { type: 'agent', id: agent.id };
}

export const SYSTEM: AuditActor = { type: 'system', id: 'countersign' };

/** What the audit keeps of a request: ids and the digest, never credential material. */
export function requestSummary(record: AccessRequestRecord): Record<string, unknown> {
  return {
    agent_id: record.agentId,
    action: record.action,
    resource: record.resource,
    task_id: record.taskId,
    digest: record.digest,
  };
}
