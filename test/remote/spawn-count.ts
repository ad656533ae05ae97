/**
 * Loaded first by guard-many.ts: counts the processes started through child_process.spawn
 * (the guard's batch command) by program name, without changing what they do.
 */
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

export const spawned = new Map<string, number>();
const original = childProcess.spawn as unknown as (...args: unknown[]) => childProcess.ChildProcess;
(childProcess as unknown as { spawn: unknown }).spawn = (...args: unknown[]): childProcess.ChildProcess => {
  const name = String(args[0]).split('/').pop()!;
  spawned.set(name, (spawned.get(name) ?? 0) + 1);
  return original(...args);
};
syncBuiltinESMExports();
