/**
 * Several targets through one NetworkGuard, seen from inside the vault namespace (the
 * config's [network] section says how: one at a time, `parallel`, or `batch`).
 *
 * usage: node guard-many.js CONFIG STATE_DIR MODE ARGS…
 *   run OPEN CLOSED   opens every address of OPEN (comma-separated, port 22) at once and
 *                     holds each 300–600 ms, while a prober tries every address of OPEN
 *                     and CLOSED, again and again; prints JSON: the connections that
 *                     succeeded outside their target's open window (violations), how
 *                     many succeeded inside it, and how many batch commands ran until
 *                     every target was open (batchesToOpen).
 *   crash OPEN        starts opening every address of OPEN at once and SIGKILLs itself as
 *                     soon as its marker records them all, before the opens have ended.
 *   hold ADDRESS      opens ADDRESS:22, prints `open`, then answers each `check` line on
 *                     standard input with `connected` or the failure, until killed.
 *   recover           what passtore does at start: prints how many targets it closed.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawned } from './spawn-count.js'; // first: it counts the guard's batch commands
import { loadConfig } from '../../src/config.js';
import { NetworkGuard } from '../../src/guard/guard.js';

const [configFile, stateDir, mode, ...args] = process.argv.slice(2) as [string, string, string, ...string[]];
const guard = new NetworkGuard(loadConfig(configFile).network, stateDir);

/** 'connected', or the error code, or 'timeout' after `ms`. */
function tryConnect(host: string, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port: 22 });
    const done = (outcome: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done('timeout'), ms);
    socket.once('connect', () => done('connected'));
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

const list = (s: string | undefined) => (s ? s.split(',').filter(Boolean) : []);

if (mode === 'run') {
  const open = list(args[0]);
  const closed = list(args[1]);
  const windows = new Map<string, { from: number; to: number }>();
  const successes: Array<{ address: string; from: number; to: number }> = [];
  let attempts = 0;
  let probing = true;
  const prober = (async () => {
    while (probing) {
      await Promise.all(
        [...open, ...closed].map(async (address) => {
          const from = performance.now();
          const outcome = await tryConnect(address, 250);
          attempts++;
          if (outcome === 'connected') successes.push({ address, from, to: performance.now() });
        }),
      );
      // A refused connect fails without I/O (link down: ENETUNREACH); let timers run.
      await sleep(10);
    }
  })();
  const started = performance.now();
  let opened = 0;
  let batchesToOpen = 0;
  await Promise.all(
    open.map(async (address) => {
      const from = performance.now();
      // As withAccess, with a count of the batch commands run until every target is open.
      await guard.open({ address, port: 22 });
      try {
        if (++opened === open.length) batchesToOpen = [...spawned.values()].reduce((a, b) => a + b, 0);
        await sleep(300 + Math.random() * 300);
      } finally {
        await guard.close({ address, port: 22 });
      }
      windows.set(address, { from, to: performance.now() });
    }),
  );
  const wall = performance.now() - started;
  await sleep(300); // the prober goes on a while after everything is closed
  probing = false;
  await prober;
  const violations = successes.filter((s) => {
    const w = windows.get(s.address);
    // A connection is explained only by a window of its own address that it overlaps.
    return !w || s.to < w.from || s.from > w.to;
  });
  const reached = new Set(successes.filter((s) => !violations.includes(s)).map((s) => s.address));
  process.stdout.write(`${JSON.stringify({ violations, reached: reached.size, attempts, wall, batchesToOpen })}\n`);
} else if (mode === 'crash') {
  const open = list(args[0]);
  const marker = join(stateDir, `guard-open.${process.pid}.json`);
  for (const address of open) void guard.open({ address, port: 22 }).then(() => process.stdout.write(`opened ${address}\n`));
  for (;;) {
    try {
      const m = JSON.parse(readFileSync(marker, 'utf8')) as { targets: unknown[] };
      if (m.targets.length === open.length) break;
    } catch {
      // not written yet
    }
    await sleep(1);
  }
  process.stdout.write(`killed with ${readdirSync(stateDir).filter((n) => n.startsWith('guard-open.')).length} marker\n`);
  process.kill(process.pid, 'SIGKILL');
} else if (mode === 'hold') {
  const address = args[0]!;
  await guard.open({ address, port: 22 });
  process.stdout.write('open\n');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === 'check') process.stdout.write(`${await tryConnect(address, 1_000)}\n`);
  }
  await guard.close({ address, port: 22 });
} else if (mode === 'recover') {
  process.stdout.write(`${await guard.recover()}\n`);
} else {
  throw new Error(`unknown mode ${mode}`);
}
