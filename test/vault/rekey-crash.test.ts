/**
 * rekey is one transaction: a process killed at any moment of it leaves a vault that
 * reads with the old data key or the new one, never with neither. A child process
 * (rekey-child.ts) rekeys a vault of 3000 entries plus history; the parent SIGKILLs it
 * at increasing delays and, after each kill, unlocks a fresh session and decrypts every
 * secret.
 */
process.env.PASSTORE_SCRYPT_LOG_N = '14';
process.env.PASSTORE_TEST_SWITCHES = 'for-tests-only';

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultConfig, type Config } from '../../src/config.js';
import { formatSpec } from '../../src/names.js';
import { Secret } from '../../src/secret.js';
import { Session } from '../../src/session.js';
import { openStore } from '../../src/storage/open.js';
import { Vault } from '../../src/vault/vault.js';
import { createTestDatabase, mariadbSkip, type TestDatabase } from '../support/mariadb.js';
import { ScriptedIo } from '../support/scripted.js';

const CHILD = fileURLToPath(new URL('./rekey-child.js', import.meta.url));
const PASSPHRASE = 'rekey crash passphrase';
const HOSTS = 1000;
const SERVICES = ['ssh', 'ipmi', 'console'];
const HISTORY = 100;

interface Place {
  db: string;
  passwordFile: string | undefined;
  cleanup(): Promise<void>;
}

const backends: Array<{ name: string; skip: string | false; create(): Promise<Place> }> = [
  {
    name: 'sqlite',
    skip: false,
    async create() {
      const dir = mkdtempSync(join(tmpdir(), 'passtore-rekey-'));
      return { db: `sqlite:${join(dir, 'vault.db')}`, passwordFile: undefined, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'mariadb',
    skip: await mariadbSkip(),
    async create() {
      const t: TestDatabase = await createTestDatabase();
      return { db: t.url, passwordFile: t.passwordFile, cleanup: () => t.drop() };
    },
  },
];

/** The password stored for one entry version (distinct for every row). */
const passwordFor = (fqdn: string, service: string, version: number) => `Pw/${fqdn}/${service}/v${version}`;

/** Builds the vault directly through the Store and Vault, in one transaction. */
async function build(place: Place): Promise<{ entries: number; history: number }> {
  const store = await openStore(place.db, place.passwordFile);
  try {
    const vault = await Vault.create(store, 'alice', Secret.fromString(PASSPHRASE));
    const now = new Date().toISOString();
    let entries = 0;
    let history = 0;
    await vault.transaction(async (tx) => {
      for (let i = 0; i < HOSTS; i++) {
        const fqdn = `wn-${String(i).padStart(4, '0')}.example.org`;
        const host = await tx.addHost({ fqdn, address: null, port: 22, createdAt: now });
        for (const service of SERVICES) {
          const version = i < HISTORY && service === 'ssh' ? 2 : 1;
          const id = { fqdn, user: 'root', service, version };
          if (version === 2) {
            const old = vault.sealPassword({ ...id, version: 1 }, Secret.fromString(passwordFor(fqdn, service, 1)));
            await tx.archiveEntry({ fqdn, user: 'root', service, version: 1, secretCiphertext: old, reason: 'updated', archivedAt: now, archivedBy: 'alice' });
            history++;
          }
          const secretCiphertext = vault.sealPassword(id, Secret.fromString(passwordFor(fqdn, service, version)));
          await tx.insertEntry({ hostId: host.id, user: 'root', service, version, state: 'set', secretCiphertext, updatedAt: now, updatedBy: 'alice' });
          entries++;
        }
      }
    });
    vault.lock();
    return { entries, history };
  } finally {
    await store.close();
  }
}

/** Unlocks a fresh session and decrypts every secret; returns the data key generation. */
async function verifyAll(place: Place): Promise<number> {
  const config: Config = { ...defaultConfig(), domain: 'example.org', db: place.db, dbPasswordFile: place.passwordFile, operator: 'alice' };
  const io = new ScriptedIo();
  io.answers.push(PASSPHRASE);
  const session = await Session.open({ config, prompt: io, out: io, terminal: false, operator: 'alice', unlock: { failureDelayMs: 10 } });
  try {
    await session.unlock(1);
    const { entries, history } = await session.store.allSecrets();
    assert.equal(entries.length, HOSTS * SERVICES.length);
    assert.equal(history.length, HISTORY);
    let bad = 0;
    let firstBad = '';
    for (const row of [...entries, ...history]) {
      let plain: string;
      try {
        const s = session.vault.openPassword(row);
        plain = s.reveal();
        s.wipe();
      } catch (e) {
        plain = `<${(e as Error).message}>`;
      }
      if (plain !== passwordFor(row.fqdn, row.service, row.version)) {
        bad++;
        firstBad ||= `${formatSpec(row)} v${row.version}: ${plain.startsWith('<') ? plain : 'wrong plaintext'}`;
      }
    }
    assert.equal(bad, 0, `${bad} secrets do not decrypt to what was stored, e.g. ${firstBad}`);
    return (await session.store.getVault())!.dataKeyGeneration;
  } finally {
    await session.close();
  }
}

interface ChildRun {
  /** What the child printed before it ended. */
  said: string[];
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
  /** Milliseconds from `unlocked` to the end. */
  ms: number;
}

/**
 * Runs the child; kills it `killAfterMs` after it reports `unlocked`, or as soon as it
 * reports `committing` when `killAt` is 'committing'; never when both are undefined.
 */
function runChild(place: Place, options: { killAfterMs?: number; killAt?: 'committing'; holdMs?: number }): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, place.db, place.passwordFile ?? '', 'alice', String(options.holdMs ?? 0)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const said: string[] = [];
    let stderr = '';
    let buffered = '';
    let unlockedAt = 0;
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    child.stdout.on('data', (d: string) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        said.push(line);
        if (line === 'unlocked') {
          unlockedAt = performance.now();
          if (options.killAfterMs !== undefined) setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
        }
        if (line.startsWith('committing') && options.killAt === 'committing') child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      resolve({ said, code, signal, stderr, ms: unlockedAt ? performance.now() - unlockedAt : 0 });
    });
    child.stdin.end(PASSPHRASE);
  });
}

for (const backend of backends) {
  describe(`rekey killed at any moment on ${backend.name}`, { skip: backend.skip }, () => {
    let place: Place;
    let counts: { entries: number; history: number };

    before(async () => {
      place = await backend.create();
      counts = await build(place);
    });

    after(async () => {
      await place?.cleanup();
    });

    test('every secret decrypts after each kill, with the old data key or the new', async (t) => {
      let generation = await verifyAll(place);
      assert.equal(generation, 1);

      // One run to the end: how long a rekey of this vault takes here.
      const full = await runChild(place, {});
      assert.equal(full.code, 0, full.stderr);
      assert.deepEqual(full.said, ['unlocked', `committing ${counts.entries + counts.history}`, `rekeyed ${counts.entries + counts.history}`]);
      generation = await verifyAll(place);
      assert.equal(generation, 2, 'a finished rekey is committed');
      const span = full.ms;
      t.diagnostic(`a full rekey of ${counts.entries + counts.history} secrets took ${Math.round(span)} ms`);

      // Killed while holding the transaction open after rewriting every row: nothing of it stays.
      const held = await runChild(place, { killAt: 'committing', holdMs: 5_000 });
      assert.equal(held.signal, 'SIGKILL', held.stderr);
      assert.ok(held.said.some((l) => l.startsWith('committing')));
      assert.equal(await verifyAll(place), generation, 'a rekey killed before its commit leaves the old key');

      // Killed at increasing moments: before, early in, late in and around the end of the transaction.
      const outcomes: string[] = [];
      for (const fraction of [0, 0.15, 0.4, 0.7, 0.95, 1.3]) {
        const run = await runChild(place, { killAfterMs: Math.round(span * fraction) });
        assert.ok(run.signal === 'SIGKILL' || run.code === 0, `the child failed on its own: ${run.stderr}`);
        const now = await verifyAll(place);
        const finished = run.said.some((l) => l.startsWith('rekeyed'));
        if (finished) assert.equal(now, generation + 1, 'a rekey that said it finished is committed');
        else assert.ok(now === generation || now === generation + 1, `generation ${now} after ${generation}`);
        outcomes.push(`${fraction}: ${now === generation ? 'old key' : 'new key'}${run.signal ? ' (killed)' : ''}`);
        generation = now;
      }
      t.diagnostic(outcomes.join(', '));
    });
  });
}
