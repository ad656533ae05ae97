/**
 * The child process of memory.test.ts (not a test itself): unlocks the vault named by
 * its arguments with the passphrase read from standard input, decrypts one password
 * (never printing it), wipes it and locks the vault, then says
 * `scan` and waits for the parent to read its memory and kill it.
 *
 *   node memory-child.js DB FQDN [leak]
 *
 * With `leak`, it keeps an unwiped copy of the plaintext: the control that shows the
 * parent's scan finds what is there.
 */
import { Secret } from '../../src/secret.js';
import { openStore } from '../../src/storage/open.js';
import { Vault } from '../../src/vault/vault.js';

const [db, fqdn, mode] = process.argv.slice(2);
const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const input = Buffer.concat(chunks);
for (const c of chunks) c.fill(0);
const passphrase = Secret.fromBytes(input);

const store = await openStore(db!);
const vault = (await Vault.load(store))!;
await vault.unlockWithPassphrase('alice', passphrase);
passphrase.wipe();
const [entry] = await store.findEntries(fqdn!, 'root', 'ssh');
const secret = vault.openPassword(entry!);
const kept = mode === 'leak' ? Buffer.from(secret.bytes()) : undefined;
process.stdout.write(`opened ${secret.length}\n`);
secret.wipe();
vault.lock();
await store.close();
// No garbage collection is forced: an unwiped buffer stays in the heap, as it would in
// the programs, until the collector happens to free it.
await new Promise((r) => setTimeout(r, 100));
process.stdout.write(`scan${kept ? ` ${kept.length}` : ''}\n`);
setInterval(() => undefined, 1000);
