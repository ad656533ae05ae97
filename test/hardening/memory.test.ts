/**
 * No plaintext is left in memory after open() and wipe() (issue 13, item 7): a child
 * process unlocks a vault, decrypts a password, wipes it and locks the vault; the parent
 * then reads every writable mapping of the child through /proc/PID/mem and searches it
 * for the password and for the vault's root key. A control child that keeps one unwiped
 * copy of the password shows that the scan finds what is there.
 */
process.env.PASSTORE_SCRYPT_LOG_N = '14';
process.env.PASSTORE_TEST_SWITCHES = 'for-tests-only';

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Secret } from '../../src/secret.js';
import { openStore } from '../../src/storage/open.js';
import { Vault } from '../../src/vault/vault.js';

const CHILD = fileURLToPath(new URL('./memory-child.js', import.meta.url));
const PASSPHRASE = 'memory scan passphrase';
const FQDN = 'mem-01.example.org';

let dir: string;
let db: string;
let canary: Buffer;
let root: Buffer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'passtore-memory-'));
  db = join(dir, 'vault.db');
  // Long enough (107 bytes) that a freed copy outlives malloc's free-list pointers.
  canary = Buffer.from(`mem-canary-${randomBytes(48).toString('hex')}`);
  const store = await openStore(`sqlite:${db}`);
  const vault = await Vault.create(store, 'alice', Secret.fromString(PASSPHRASE));
  const now = new Date().toISOString();
  await vault.transaction(async (tx) => {
    const host = await tx.addHost({ fqdn: FQDN, address: null, port: 22, createdAt: now });
    const secretCiphertext = vault.sealPassword({ fqdn: FQDN, user: 'root', service: 'ssh', version: 1 }, Secret.fromBytes(Buffer.from(canary)));
    await tx.insertEntry({ hostId: host.id, user: 'root', service: 'ssh', version: 1, state: 'set', secretCiphertext, updatedAt: now, updatedBy: 'alice' });
  });
  root = vault.rootKeyCopy();
  vault.lock();
  await store.close();
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** Counts the places in `pid`'s writable memory holding each needle. */
function scan(pid: number, needles: Buffer[]): number[] {
  const found = needles.map(() => 0);
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const line of maps) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (r.)/.exec(line);
      if (!m || m[3] !== 'rw') continue;
      const start = Number.parseInt(m[1]!, 16);
      const end = Number.parseInt(m[2]!, 16);
      const overlap = 64;
      for (let at = start; at < end; at += 1 << 20) {
        const len = Math.min(1 << 20, end - at) + Math.min(overlap, end - at - Math.min(1 << 20, end - at));
        const buf = Buffer.alloc(len);
        let n = 0;
        try {
          n = readSync(fd, buf, 0, len, at);
        } catch {
          continue;
        }
        const chunk = buf.subarray(0, n);
        needles.forEach((needle, i) => {
          for (let k = chunk.indexOf(needle); k >= 0 && k < (1 << 20); k = chunk.indexOf(needle, k + 1)) found[i]!++;
        });
      }
    }
  } finally {
    closeSync(fd);
  }
  return found;
}

async function runChild(mode?: string): Promise<number[]> {
  const child = spawn(process.execPath, [CHILD, `sqlite:${db}`, FQDN, ...(mode ? [mode] : [])], { env: { PATH: process.env.PATH, PASSTORE_TEST_SWITCHES: 'for-tests-only' }, stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    child.stdin!.end(PASSPHRASE);
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d) => {
        out += d;
        if (/^scan/m.test(out)) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child exited ${code}: ${out}`)));
    });
    assert.match(out, new RegExp(`^opened ${canary.length}$`, 'm'), 'the child decrypted the password');
    // Pieces away from the start: free() writes its list pointers over the first 16
    // bytes of a freed block, which would hide a copy that is still there.
    return scan(child.pid!, [canary.subarray(40, 72), root.subarray(-16)]);
  } finally {
    child.kill('SIGKILL');
  }
}

test('control: a copy left unwiped is found by the scan', async () => {
  const [password] = await runChild('leak');
  assert.ok(password! >= 1, `the scan finds the kept copy (found ${password})`);
});

test('after open(), wipe() and lock(), no copy of the password or the root key is in memory', async () => {
  const [password, rootKey] = await runChild();
  assert.equal(password, 0, 'copies of the password left in memory');
  assert.equal(rootKey, 0, 'copies of the root key left in memory');
});
