/**
 * Whether a connection asks the host to prove the host keys it announces after the login
 * (OpenSSH's `hostkeys-00@openssh.com`; ssh2 answers with `hostkeys-prove-00@openssh.com`,
 * which makes the host sign with each of its keys). From inside the vault namespace,
 * through passtore's own NetworkGuard: one login with a bare ssh2 Client (which proves
 * them: shows that the host announces its keys), then one with passtore's SshConnection;
 * each runs `true` and stays a moment for the announcement. Prints JSON: how many prove
 * requests each sent.
 *
 * usage: node hostkeys-probe.js CONFIG STATE_DIR ADDRESS < root-password
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'ssh2';
import { loadConfig } from '../../src/config.js';
import { NetworkGuard } from '../../src/guard/guard.js';
import { Secret } from '../../src/secret.js';
import { SshConnection } from '../../src/ssh/ssh.js';

const [configFile, stateDir, address] = process.argv.slice(2) as [string, string, string];
const password = readFileSync(0, 'utf8').replace(/\n$/, '');

// Every prove request any ssh2 client sends goes through this method of its Protocol.
const Protocol = createRequire(import.meta.url)('ssh2/lib/protocol/Protocol.js') as { prototype: Record<string, (...a: unknown[]) => unknown> };
let proves = 0;
const prove = Protocol.prototype.openssh_hostKeysProve!;
Protocol.prototype.openssh_hostKeysProve = function (this: unknown, ...a: unknown[]) {
  proves++;
  return prove.apply(this, a);
};

async function bare(): Promise<void> {
  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({ host: address, port: 22, username: 'root', password, tryKeyboard: false, readyTimeout: 10_000, hostVerifier: () => true });
  });
  await new Promise<void>((resolve, reject) => client.exec('true', (err, stream) => (err ? reject(err) : stream.on('close', () => resolve()).resume())));
  await sleep(500);
  client.end();
}

async function passtore(): Promise<void> {
  const conn = await SshConnection.connect({ name: 'host', address, port: 22 }, { username: 'root', password: Secret.fromString(password) }, { onNewKey: async () => true });
  const r = await conn.exec(['true']);
  if (r.code !== 0) throw new Error(`true exited with ${r.code}`);
  await sleep(500);
  await conn.close();
}

const guard = new NetworkGuard(loadConfig(configFile).network, stateDir);
await guard.withAccess({ address, port: 22 }, async () => {
  await bare();
  const byBare = proves;
  await passtore();
  process.stdout.write(`${JSON.stringify({ bare: byBare, passtore: proves - byBare })}\n`);
});
