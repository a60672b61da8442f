import { describe, expect, it } from 'vitest';
import { prepared } from '../src/prepared.js';
import { postgresCompiler, sqliteCompiler } from './support/compilers.js';

describe.each([
  ['sqlite', sqliteCompiler()],
  ['postgres', postgresCompiler()],
])('prepared statement shapes (%s)', (_name, db) => {
  it('gives the same SQL and parameters as compiling the query each time', () => {
    const rows = [
      { issuer: 'a', token_id: "x'); DROP TABLE agents; --", expires_at: 1 },
      { issuer: 'b\0c', token_id: 'y', expires_at: 2 },
    ];
    for (const row of rows) {
      const fresh = db
        .insertInto('token_ids')
        .values(row)
        .onConflict((oc) => oc.columns(['issuer', 'token_id']).doNothing())
        .compile();
      const reused = prepared(db, 'test.consume', row, (p) =>
        db
          .insertInto('token_ids')
          .values(p)
          .onConflict((oc) => oc.columns(['issuer', 'token_id']).doNothing()),
      );
      expect(reused.sql).toBe(fresh.sql);
      expect(reused.parameters).toEqual(fresh.parameters);
      // Values are bound, never part of the SQL text.
      expect(reused.sql).not.toContain('DROP');
    }
  });

  it('keeps the constants of the shape (a LIMIT) and binds where-clause values in order', () => {
    const q = prepared(db, 'test.tasks', { agentId: 'ag', taskId: 't1' }, (p) =>
      db
        .selectFrom('tasks')
        .selectAll()
        .where('task_id', '=', p.taskId)
        .where('agent_id', '=', p.agentId)
        .limit(3),
    );
    const fresh = db
      .selectFrom('tasks')
      .selectAll()
      .where('task_id', '=', 't1')
      .where('agent_id', '=', 'ag')
      .limit(3)
      .compile();
    expect(q.sql).toBe(fresh.sql);
    expect(q.parameters).toEqual(fresh.parameters);
  });

  it('refuses an undefined value, a value its shape does not use, and other keys than its shape', () => {
    expect(() =>
      prepared(db, 'test.undef', { id: undefined as unknown as string }, (p) =>
        db.selectFrom('agents').selectAll().where('id', '=', p.id),
      ),
    ).toThrow(/id is undefined/);
    expect(() =>
      prepared(db, 'test.unused', { id: 'a', other: 'b' }, (p) =>
        db.selectFrom('agents').selectAll().where('id', '=', p.id),
      ),
    ).toThrow(/other are not used/);
    prepared(db, 'test.keys', { id: 'a' }, (p) => db.selectFrom('agents').selectAll().where('id', '=', p.id));
    expect(() =>
      prepared(db, 'test.keys', { id: 'a', more: 1 }, (p) =>
        db.selectFrom('agents').selectAll().where('id', '=', p.id),
      ),
    ).toThrow(/other values than its shape/);
  });
});
