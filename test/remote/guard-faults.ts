/**
 * The network guard when something goes wrong, seen from inside the vault namespace (the
 * config's [network] section, real iptables; scripts the test wrote stand in for commands
 * that fail). Each mode prints one JSON line; the test checks it and the firewall.
 *
 * usage: node guard-faults.js CONFIG STATE_DIR MODE ARGS…
 *   lock ADDRESS          opens ADDRESS:22; a second process takes the guard lock and
 *                         holds it while this one closes the target (lock wait 2 s); then
 *                         lets it go, opens and closes ADDRESS:22 again. Prints the close's
 *                         error, the longest the event loop stood still meanwhile, and the
 *                         marker after the failed close.
 *   hold-lock             takes the guard lock of STATE_DIR, prints `held`, and keeps it
 *                         until its standard input ends.
 *   lost A B              opens A:22 and B:22, removes A's rule behind the guard's back,
 *                         then closes both at once (one batch). Prints each close's outcome
 *                         and the marker after.
 *   open ADDRESS          opens ADDRESS:22, prints the firewall's OUTPUT rules and the
 *                         markers in STATE_DIR while it is open, closes it.
 *   open-fails ADDRESS [jam]  opens ADDRESS:22, which must fail; prints the error. With
 *                         `jam` the marker cannot be written (a directory in the way).
 *   close-fails ADDRESS   opens ADDRESS:22 and closes it, which must fail; prints the error
 *                         and the marker after.
 *   close-fails-stay ADDRESS  the same, then stays alive until its standard input ends.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config.js';
import { errorMessage } from '../../src/errors.js';
import { NetworkGuard } from '../../src/guard/guard.js';

const run = promisify(execFile);
const [configFile, stateDir, mode, ...args] = process.argv.slice(2) as [string, string, string, ...string[]];
const markerFile = join(stateDir, `guard-open.${process.pid}.json`);
const marker = (): unknown => {
  try {
    return JSON.parse(readFileSync(markerFile, 'utf8'));
  } catch {
    return null;
  }
};
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: unknown) => errorMessage(e),
  );
const print = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

if (mode === 'hold-lock') {
  mkdirSync(stateDir, { recursive: true });
  const db = new Database(join(stateDir, 'guard.lock'));
  db.exec('BEGIN EXCLUSIVE');
  process.stdout.write('held\n');
  process.stdin.resume();
  process.stdin.on('end', () => {
    db.exec('COMMIT');
    process.exit(0);
  });
} else {
  const guard = new NetworkGuard(loadConfig(configFile).network, stateDir, { lockWaitMs: 2_000 });
  const target = (address: string) => ({ address, port: 22 });

  if (mode === 'lock') {
    const t = target(args[0]!);
    await guard.open(t);
    const holder = spawn(process.execPath, [fileURLToPath(import.meta.url), configFile, stateDir, 'hold-lock'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: holder.stdout! })[Symbol.asyncIterator]();
    if ((await lines.next()).value !== 'held') throw new Error('the second process did not take the lock');
    // How long the event loop stood still while the close waited for the lock.
    let lastTick = performance.now();
    let maxGap = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - lastTick);
      lastTick = now;
    }, 20);
    const closeError = await outcome(guard.close(t));
    clearInterval(ticker);
    const afterFailure = marker();
    holder.stdin!.end();
    await new Promise((resolve) => holder.once('close', resolve));
    // The lock is free again: the same target opens (no hang) and closes.
    const reopen = await outcome(guard.open(t));
    const reclose = await outcome(guard.close(t));
    print({ closeError, maxGap: Math.round(maxGap), afterFailure, reopen, reclose, end: marker() });
  } else if (mode === 'lost') {
    const [a, b] = [target(args[0]!), target(args[1]!)];
    await Promise.all([guard.open(a), guard.open(b)]);
    // A's rule disappears behind the guard's back (as an nft set element two processes share does).
    await run('iptables', ['-D', 'OUTPUT', '-o', 'vault0', '-d', a.address, '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']);
    const [closeA, closeB] = await Promise.all([outcome(guard.close(a)), outcome(guard.close(b))]);
    print({ closeA, closeB, end: marker() });
  } else if (mode === 'open') {
    const t = target(args[0]!);
    await guard.open(t);
    const rules = (await run('iptables', ['-S', 'OUTPUT'])).stdout.split('\n').filter((l) => l.startsWith('-A OUTPUT') && !l.includes('-o lo'));
    const markers = readdirSync(stateDir).filter((n) => n.startsWith('guard-open'));
    await guard.close(t);
    print({ rules, markers });
  } else if (mode === 'open-fails') {
    // `jam`: the marker cannot be written (a directory where its temporary file goes).
    if (args[1] === 'jam') mkdirSync(`${markerFile}.tmp`, { recursive: true });
    print({ error: await outcome(guard.open(target(args[0]!))), end: marker() });
  } else if (mode === 'close-fails' || mode === 'close-fails-stay') {
    const t = target(args[0]!);
    await guard.open(t);
    print({ error: await outcome(guard.close(t)), end: marker() });
    // Alive with its stale target until its standard input ends.
    if (mode === 'close-fails-stay') for await (const _ of createInterface({ input: process.stdin }));
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}
