/** Shared-machine hygiene: how busy is the machine, and waiting for it to go quiet. */
import { systemCpu } from './server.js';

/** Samples the machine for `seconds`: cores busy with anything (the caller idles meanwhile). */
export async function machineLoad(seconds: number): Promise<number | null> {
  const a = systemCpu();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = systemCpu();
  return a && b ? (b.busy - a.busy) / seconds : null;
}

/** Waits up to `maxWaitSeconds` until other processes use at most `quietCores`; returns the last load seen. */
export async function waitQuiet(
  label: string,
  options: { quietCores: number; maxWaitSeconds: number },
): Promise<number | null> {
  let load = await machineLoad(2);
  for (
    let waited = 0;
    load !== null && load > options.quietCores && waited < options.maxWaitSeconds;
    waited += 3
  ) {
    if (waited % 30 === 0)
      process.stderr.write(
        `${label}: machine busy (${load.toFixed(2)} cores used by other processes); waiting...\n`,
      );
    load = await machineLoad(3);
  }
  if (load !== null && load > options.quietCores)
    process.stderr.write(
      `${label}: WARNING: ${load.toFixed(2)} cores busy with other processes; figures will be noisy\n`,
    );
  return load;
}
