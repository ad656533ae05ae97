/**
 * A user-space delaying TCP relay for the test site: the latency of a real network
 * (`tc netem` is not in this kernel). It runs in the site's bridge namespace, listens on
 * one address per host (added to the bridge), and forwards each connection to its host,
 * holding every chunk for half the round trip in each direction, and the connection to
 * the host for half of one (the SYN's way there), so that a client sees a network with
 * that round-trip time: the host's first bytes arrive one round trip after the connect,
 * and each exchange after that takes one more. Order is kept: every chunk of a direction is
 * held for the same time.
 *
 * As a program (run by `startRelay` inside the namespace):
 *   node relay.js --serve RTT_MS LISTEN=TARGET…   (addresses; port 22 each)
 * prints `ready` once every address listens.
 *
 * One difference from a network: the relay accepts before it connects to the host, so a
 * host that refuses (its sshd stopped) shows as a reset after the handshake, not as a
 * refused connection (ECONNREFUSED).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** A running relay process. */
export interface Relay {
  rttMs: number;
  stop(): Promise<void>;
}

/**
 * Starts the relay in namespace `ns` (`ip netns exec`): each `listen` address forwards
 * to its `target`, port 22. The listen addresses must exist in that namespace.
 */
export async function startRelay(ns: string, pairs: Array<{ listen: string; target: string }>, rttMs: number): Promise<Relay> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), '--serve', String(rttMs), ...pairs.map((p) => `${p.listen}=${p.target}`)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the relay did not start in 10 s')), 10_000);
    lines.once('line', (l) => {
      clearTimeout(timer);
      if (l === 'ready') resolve();
      else reject(new Error(`relay: ${l}`));
    });
    child.once('exit', (code) => reject(new Error(`the relay exited with ${code}`)));
  });
  return {
    rttMs,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Forwards `from` to `to`, each chunk `delayMs` later; an end or error is passed on after the data before it. */
function delayed(from: Socket, to: Socket, delayMs: number): void {
  from.on('data', (chunk: Buffer) => {
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk);
    }, delayMs);
  });
  from.on('end', () => setTimeout(() => to.end(), delayMs));
  from.on('error', () => setTimeout(() => to.destroy(), delayMs));
  from.on('close', () => setTimeout(() => to.destroy(), delayMs + 1));
}

async function serve(rttMs: number, pairs: string[]): Promise<void> {
  const half = rttMs / 2;
  await Promise.all(
    pairs.map(
      (pair) =>
        new Promise<void>((resolve, reject) => {
          const [listen, target] = pair.split('=') as [string, string];
          const server = createServer({ pauseOnConnect: true }, (client) => {
            // The SYN's way to the host: the client's bytes wait until then.
            setTimeout(() => {
              const upstream = connect({ host: target, port: 22 });
              upstream.setNoDelay(true);
              client.setNoDelay(true);
              // A host that refuses (sshd stopped) is a reset to the client: the relay has
              // accepted already, so it cannot refuse as the host's kernel does.
              upstream.once('error', () => setTimeout(() => client.resetAndDestroy(), half));
              delayed(client, upstream, half);
              delayed(upstream, client, half);
              client.resume();
            }, half);
          });
          server.once('error', reject);
          server.listen(22, listen, () => resolve());
        }),
    ),
  );
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => process.exit(0));
}

if (process.argv[2] === '--serve') {
  serve(Number(process.argv[3]), process.argv.slice(4)).catch((e: Error) => {
    process.stdout.write(`${e.message}\n`);
    process.exit(1);
  });
}
