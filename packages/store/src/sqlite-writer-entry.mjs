// The writer thread's entry point. The thread gets no execArgv, so it registers tsx itself
// (Node 20 has no type stripping) and then runs the TypeScript writer.
import { register } from 'tsx/esm/api';

register();
const { runWriterThread } = await import('./sqlite-writer.ts');
runWriterThread();
