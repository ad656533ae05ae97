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
 *   node relay.js --serve RTT_MS PORT,PORT… LISTEN=TARGET…   (addresses; each port of the list)
 * prints `ready` once every address listens.
 *
 * The relay accepts before it connects to the host, so a host that refuses shows as a
 * reset after the handshake; the site therefore tells the relay when it stops or starts
 * a host's sshd (`listening`, port 22), and the relay address refuses too, as the host would.
 * Every other port of the list (a host's TLS service) is relayed the same way, so that
 * what the vault reaches on a host, SSH or a service's proof, sees the same latency.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** A running relay process. */
export interface Relay {
  rttMs: number;
  /** The relay's process (its CPU time is read by the putcrt benchmark). */
  pid: number | undefined;
  /**
   * Stops or starts listening on one host's relay address, as its sshd is stopped or
   * started: a connection to it is then refused, as by the host itself.
   */
  listening(listen: string, on: boolean): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the relay in namespace `ns` (`ip netns exec`): each `listen` address forwards
 * to its `target`, on each of `ports`. The listen addresses must exist in that namespace.
 */
export async function startRelay(ns: string, pairs: Array<{ listen: string; target: string }>, rttMs: number, ports: number[] = [22]): Promise<Relay> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), '--serve', String(rttMs), ports.join(','), ...pairs.map((p) => `${p.listen}=${p.target}`)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const answers: Array<(line: string) => void> = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the relay did not start in 10 s')), 10_000);
    lines.once('line', (l) => {
      clearTimeout(timer);
      if (l === 'ready') resolve();
      else reject(new Error(`relay: ${l}`));
    });
    child.once('exit', (code) => reject(new Error(`the relay exited with ${code}`)));
  });
  lines.on('line', (l) => answers.shift()?.(l));
  return {
    rttMs,
    pid: child.pid,
    listening: (listen, on) =>
      new Promise<void>((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) return reject(new Error('the relay is not running'));
        answers.push((l) => (l === 'ok' ? resolve() : reject(new Error(`relay: ${l}`))));
        child.stdin!.write(`${on ? 'up' : 'down'} ${listen}\n`);
      }),
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

async function serve(rttMs: number, ports: number[], pairs: string[]): Promise<void> {
  const half = rttMs / 2;
  /** Keyed `address:port`. */
  const servers = new Map<string, Server>();
  const listen = (address: string, target: string, port: number) =>
    new Promise<void>((resolve, reject) => {
      const server = createServer({ pauseOnConnect: true }, (client) => {
        // The SYN's way to the host: the client's bytes wait until then.
        setTimeout(() => {
          const upstream = connect({ host: target, port });
          upstream.setNoDelay(true);
          client.setNoDelay(true);
          // A host that refuses is a reset to the client: the relay has accepted already.
          upstream.once('error', () => setTimeout(() => client.resetAndDestroy(), half));
          delayed(client, upstream, half);
          delayed(upstream, client, half);
          client.resume();
        }, half);
      });
      server.once('error', reject);
      server.listen(port, address, () => {
        servers.set(`${address}:${port}`, server);
        resolve();
      });
    });
  const targets = new Map(pairs.map((p) => p.split('=') as [string, string]));
  await Promise.all([...targets].flatMap(([address, target]) => ports.map((port) => listen(address, target, port))));
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => process.exit(0));
  for await (const line of createInterface({ input: process.stdin })) {
    const [verb, address = ''] = line.trim().split(' ');
    try {
      const ssh = servers.get(`${address}:22`);
      if (verb === 'down') await new Promise<void>((resolve) => (ssh ? ssh.close(() => resolve()) : resolve()));
      else if (verb === 'up' && !ssh?.listening) await listen(address, targets.get(address)!, 22);
      process.stdout.write('ok\n');
    } catch (e) {
      process.stdout.write(`${(e as Error).message}\n`);
    }
  }
}

if (process.argv[2] === '--serve') {
  serve(Number(process.argv[3]), process.argv[4]!.split(',').map(Number), process.argv.slice(5)).catch((e: Error) => {
    process.stdout.write(`${e.message}\n`);
    process.exit(1);
  });
}
