#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx (Node 20 has no type stripping). Started by
// countersign.cjs, which sizes the thread pool first.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv);
