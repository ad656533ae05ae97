/**
 * Checks passwords against a test host with real SSH logins, from inside the vault
 * namespace: opens passtore's own NetworkGuard (the config's [network] commands) to the
 * host's port 22, tries each password read from standard input (one a line), prints a
 * JSON array of booleans (accepted or not), and closes the guard.
 *
 * usage: node ssh-login.js CONFIG STATE_DIR ADDRESS USER < passwords
 */
import { readFileSync } from 'node:fs';
import { Client } from 'ssh2';
import { loadConfig } from '../../src/config.js';
import { NetworkGuard } from '../../src/guard/guard.js';

const [configFile, stateDir, address, user] = process.argv.slice(2) as [string, string, string, string];

function login(password: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.on('ready', () => {
      client.end();
      resolve(true);
    });
    client.on('error', (err: Error & { level?: string }) => {
      if (err.level === 'client-authentication') resolve(false);
      else reject(err);
    });
    client.connect({ host: address, port: 22, username: user, password, tryKeyboard: false, readyTimeout: 10_000, hostVerifier: () => true });
  });
}

const passwords = readFileSync(0, 'utf8').split('\n').filter((l) => l.length > 0);
const guard = new NetworkGuard(loadConfig(configFile).network, stateDir);
const results: boolean[] = [];
try {
  await guard.withAccess({ address, port: 22 }, async () => {
    for (const p of passwords) results.push(await login(p));
  });
  process.stdout.write(`${JSON.stringify(results)}\n`);
} catch (e) {
  process.stderr.write(`ssh-login: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
