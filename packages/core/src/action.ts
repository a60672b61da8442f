import { CountersignError } from './errors.js';
import { ACTION_CLASSES, type ActionClass } from './types.js';

const ACTION_NAME = /^[a-z][a-z0-9_.:-]{0,127}$/;

export function parseActionName(action: string): string {
  if (!ACTION_NAME.test(action)) {
    throw new CountersignError('CS_INVALID_IDENTIFIER', 'action must match [a-z][a-z0-9_.:-]{0,127}');
  }
  return action;
}

/**
 * The action class drives risk and selects the Cedar action. Built-in names are their own
 * class; operators map others (exact name, or a prefix ending in `*`); the rest are `other`.
 */
export function classifyAction(action: string, mapping: Readonly<Record<string, string>>): ActionClass {
  if ((ACTION_CLASSES as readonly string[]).includes(action)) return action as ActionClass;
  let best: { length: number; cls: string } | null = null;
  for (const [pattern, cls] of Object.entries(mapping)) {
    const matches = pattern.endsWith('*') ? action.startsWith(pattern.slice(0, -1)) : action === pattern;
    if (matches && (best === null || pattern.length > best.length)) best = { length: pattern.length, cls };
  }
  if (best && (ACTION_CLASSES as readonly string[]).includes(best.cls)) return best.cls as ActionClass;
  return 'other';
}
