/** Direct, out-of-band access to a test server's SQLite file: what an attacker with DB access would do. */
import { join } from 'node:path';
import Database from 'better-sqlite3';

export function openDb(home: string): Database.Database {
  const db = new Database(join(home, 'countersign.db'));
  db.pragma('busy_timeout = 5000');
  return db;
}

export function countersignCount(home: string, table: string): number {
  const db = openDb(home);
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}
