import { loadConfig } from '../../src/config.js';
import { NetworkGuard } from '../../src/guard/guard.js';
import { SshConnection } from '../../src/ssh/ssh.js';
import { deployPair } from '../../src/remote/deploy.js';
import { Secret } from '../../src/secret.js';
const [configFile, stateDir, address, pw] = process.argv.slice(2) as [string, string, string, string];
const guard = new NetworkGuard(loadConfig(configFile).network, stateDir);
const t0 = Date.now();
const log = (...a: unknown[]) => console.log(Date.now() - t0, ...a);
setTimeout(() => { log('still hanging'); process.exit(3); }, 15000).unref();
await guard.withAccess({ address, port: 22 }, async () => {
  const conn = await SshConnection.connect({ name: 'h', address, port: 22 }, { username: 'root', password: Secret.fromString(pw) }, { onNewKey: async () => true });
  log('connected');
  (conn as any).client.on('close', () => log('client close'));
  try {
    await deployPair(conn, '/etc/grid-security', 'C'.repeat(1200), Buffer.from('K'.repeat(1700)));
    log('deployed');
  } catch (e) { log('error', (e as Error).message); }
  conn.close();
});
log('done');
