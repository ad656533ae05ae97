/**
 * The network guard seen from inside the vault namespace: opens passtore's NetworkGuard
 * (the config's [network] commands) to OPEN_ADDRESS:22, then tries plain TCP connections
 * to OPEN_ADDRESS:22 and to OTHER_ADDRESS:22 (1 s each), prints the outcome as JSON and
 * closes the guard. With `crash` it SIGKILLs itself once the guard is open, as a crashed
 * passtore would, leaving the guard's marker behind; with `closed` it opens nothing and
 * only tries both connections.
 *
 * usage: node guard-probe.js CONFIG STATE_DIR OPEN_ADDRESS OTHER_ADDRESS [probe|crash|closed]
 */
import { connect } from 'node:net';
import { loadConfig } from '../../src/config.js';
import { NetworkGuard } from '../../src/guard/guard.js';

const [configFile, stateDir, openAddress, otherAddress, mode = 'probe'] = process.argv.slice(2) as [string, string, string, string, string?];

/** 'connected', or the error code, or 'timeout' after `ms`. */
function tryConnect(host: string, ms: number): Promise<{ outcome: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect({ host, port: 22 });
    const done = (outcome: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ outcome, ms: Date.now() - started });
    };
    const timer = setTimeout(() => done('timeout'), ms);
    socket.once('connect', () => done('connected'));
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

const guard = new NetworkGuard(loadConfig(configFile).network, stateDir);
const target = { address: openAddress, port: 22 };
if (mode === 'closed') {
  const open = await tryConnect(openAddress, 1_000);
  const other = await tryConnect(otherAddress, 1_000);
  process.stdout.write(`${JSON.stringify({ open, other })}\n`);
  process.exit(0);
}
await guard.open(target);
if (mode === 'crash') {
  process.stdout.write('open\n');
  process.kill(process.pid, 'SIGKILL');
}
try {
  const open = await tryConnect(openAddress, 3_000);
  const other = await tryConnect(otherAddress, 1_000);
  process.stdout.write(`${JSON.stringify({ open, other })}\n`);
} finally {
  await guard.close(target);
}
