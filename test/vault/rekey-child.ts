/**
 * The child process of rekey-crash.test.ts (not a test itself): opens the vault named
 * by its arguments, unlocks it with the passphrase read from standard input (never an
 * argument), and runs rekey, telling the parent on standard output where it is, so the
 * parent can kill it at chosen moments.
 *
 *   node rekey-child.js DB PASSWORD_FILE|'' OPERATOR HOLD_MS
 *
 * Prints `unlocked`, then `committing N` from inside the rekey transaction (after every
 * secret was rewritten, before the commit; it then waits HOLD_MS), then `rekeyed N`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Secret } from '../../src/secret.js';
import { openStore } from '../../src/storage/open.js';
import { Vault } from '../../src/vault/vault.js';

const [db, passwordFile, operator, holdMs] = process.argv.slice(2);
if (!db || passwordFile === undefined || !operator) {
  process.stderr.write('usage: rekey-child DB PASSWORD_FILE OPERATOR HOLD_MS\n');
  process.exit(2);
}

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const passphrase = Secret.fromBytes(Buffer.concat(chunks));

const store = await openStore(db, passwordFile || undefined);
const vault = await Vault.load(store);
if (!vault) throw new Error(`no vault in ${db}`);
await vault.unlockWithPassphrase(operator, passphrase);
passphrase.wipe();
process.stdout.write('unlocked\n');
const count = await vault.rekey(async (_tx, n) => {
  process.stdout.write(`committing ${n}\n`);
  const hold = Number(holdMs ?? 0);
  if (hold > 0) await sleep(hold);
});
process.stdout.write(`rekeyed ${count}\n`);
vault.lock();
await store.close();
