// A second process appending audit events to the same SQLite file (THREATS.md H7).
import { SqliteStore } from '../../src/index.js';

const [file, countText] = process.argv.slice(2);
let n = 0;
const store = SqliteStore.open({ file: file!, ids: { next: (p) => `${p}_${process.pid}_${++n}` } });
const count = Number(countText);
const work = [];
for (let i = 0; i < count; i++) {
  work.push(
    store.transaction((tx) =>
      tx.appendAudit(
        { type: 'worker.event', actor: { type: 'system', id: String(process.pid) }, data: { i } },
        i,
      ),
    ),
  );
  if (i % 10 === 0) await new Promise((r) => setImmediate(r));
}
await Promise.all(work);
await store.close();
