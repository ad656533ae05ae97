/**
 * Measures, from inside the vault namespace, the round trips to an SSH server: the time
 * from connect to its first bytes (the banner), and from sending our banner to its next
 * bytes (its key exchange offer). Opens the guard to the address first.
 *
 * usage: node relay-probe.js CONFIG STATE_DIR ADDRESS RUNS   → JSON { banner: [ms…], exchange: [ms…] }
 */
import { connect } from 'node:net';
import { loadConfig } from '../../src/config.js';
import { NetworkGuard } from '../../src/guard/guard.js';

const [configFile, stateDir, address, runs = '5'] = process.argv.slice(2) as [string, string, string, string?];

function once(): Promise<{ banner: number; exchange: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let banner = -1;
    let sent = 0;
    const socket = connect({ host: address, port: 22 });
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      if (banner < 0 && d.includes('SSH-2.0')) {
        banner = performance.now() - t0;
        sent = performance.now();
        socket.write('SSH-2.0-relayprobe\r\n');
        // A banner and the key exchange offer may come in one chunk: only a later chunk counts.
        return;
      }
      if (banner >= 0 && sent) {
        const exchange = performance.now() - sent;
        socket.destroy();
        resolve({ banner, exchange });
      }
    });
    socket.on('error', reject);
    setTimeout(() => reject(new Error('no answer in 5 s')), 5_000).unref();
  });
}

const guard = new NetworkGuard(loadConfig(configFile).network, stateDir);
const result = { banner: [] as number[], exchange: [] as number[] };
await guard.withAccess({ address, port: 22 }, async () => {
  for (let i = 0; i < Number(runs); i++) {
    const r = await once();
    result.banner.push(r.banner);
    result.exchange.push(r.exchange);
  }
});
process.stdout.write(`${JSON.stringify(result)}\n`);
