/**
 * A TCP proxy on 127.0.0.1 that stands between passtore and a real peer (the SMTP
 * receiver, dovecot) and cuts a connection at a chosen point of the conversation: once a
 * pattern has passed in one direction and a number of further bytes have been forwarded,
 * both sides are closed, with a FIN (`end`) or a TCP reset to passtore (`reset`). Only
 * the first `times` connections that reach the point are cut; the others pass untouched,
 * so one proxy serves both the failed attempt and the retry.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface DropRule {
  /** `up`: watch what passtore sends (client → server); `down`: what the peer answers. */
  direction: 'up' | 'down';
  /** The connection is cut once this has passed in that direction… */
  after: RegExp;
  /** …and this many more bytes of it were forwarded (default 0). */
  bytes?: number;
  /** `end`: close both sides (FIN); `reset`: a TCP RST to passtore, the peer closed. */
  how: 'end' | 'reset';
  /** How many connections to cut (default 1). */
  times?: number;
}

export class DropProxy {
  /** Connections accepted, and connections cut. */
  connections = 0;
  drops = 0;
  #server: Server;
  #rule: DropRule | undefined;
  /** Cuts made under the current rule. */
  #ruleDrops = 0;
  #open = new Set<Socket>();

  private constructor(
    server: Server,
    readonly port: number,
  ) {
    this.#server = server;
  }

  static async start(target: { host: string; port: number }, rule?: DropRule): Promise<DropProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const proxy = new DropProxy(server, (server.address() as AddressInfo).port);
    proxy.rule = rule;
    server.on('connection', (client) => proxy.#handle(client, target));
    return proxy;
  }

  /** Replaces the rule (undefined: pass everything). */
  set rule(rule: DropRule | undefined) {
    this.#rule = rule;
    this.#ruleDrops = 0;
  }

  #handle(client: Socket, target: { host: string; port: number }): void {
    this.connections++;
    const upstream = connect(target);
    this.#open.add(client);
    this.#open.add(upstream);
    const rule = this.#rule && this.#ruleDrops < (this.#rule.times ?? 1) ? this.#rule : undefined;
    let seen = '';
    let remaining: number | undefined;
    let cut = false;
    const doCut = () => {
      if (cut) return;
      cut = true;
      this.drops++;
      if (this.#rule === rule) this.#ruleDrops++;
      if (rule!.how === 'reset') client.resetAndDestroy();
      else client.destroy();
      upstream.destroy();
    };
    const pipe = (from: Socket, to: Socket, dir: 'up' | 'down') => {
      from.on('data', (chunk: Buffer) => {
        if (cut) return;
        if (!rule || rule.direction !== dir) {
          to.write(chunk);
          return;
        }
        let forward = chunk.length;
        if (remaining === undefined) {
          const before = seen.length;
          seen += chunk.toString('latin1');
          const m = rule.after.exec(seen);
          if (m) {
            const end = m.index + m[0].length;
            remaining = rule.bytes ?? 0;
            const inChunk = Math.max(0, end - before);
            forward = Math.min(chunk.length, inChunk + remaining);
            remaining -= forward - inChunk;
          } else if (seen.length > 1 << 20) seen = seen.slice(-4096);
        } else {
          forward = Math.min(chunk.length, remaining);
          remaining -= forward;
        }
        if (remaining === undefined) {
          to.write(chunk);
          return;
        }
        const slice = chunk.subarray(0, forward);
        if (remaining > 0) {
          to.write(slice);
          return;
        }
        if (slice.length > 0) to.write(slice, () => doCut());
        else doCut();
      });
    };
    pipe(client, upstream, 'up');
    pipe(upstream, client, 'down');
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    const fail = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', fail);
    upstream.on('error', fail);
    client.on('close', () => this.#open.delete(client));
    upstream.on('close', () => this.#open.delete(upstream));
  }

  async close(): Promise<void> {
    for (const s of this.#open) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
