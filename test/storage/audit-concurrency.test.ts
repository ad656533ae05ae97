/**
 * Two processes append to one vault's audit trail at once, as two shells, a shell and
 * passtore-cron, or two passtore-cron runs do: records with no change around them (an
 * unlock, a reveal, a failed command's record: session.audit without a transaction) and
 * changes that seal nothing but record themselves (ctx.change, the vault's transaction,
 * which locks the vault row first). Each pairing, on SQLite and on a private MariaDB:
 * every append succeeds (no deadlock, no lock-wait abort, no duplicate sequence number),
 * and afterwards the chain and its sealed head verify (`audit --verify`) with every record
 * there once.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, mariadbSkip } from '../support/mariadb.js';
import { createTestVault, PASSPHRASE, removeTestDir, type TestVault } from '../support/scripted.js';

const CHILD = fileURLToPath(new URL('./audit-child.js', import.meta.url));
const COUNT = 60;

interface ChildResult {
  ok: number;
  failed: number;
  errors: string[];
}

/** Starts a child; resolves `ready` once it is unlocked, `done` with its result once told to go. */
function child(tv: TestVault, mode: 'standalone' | 'change', stateDir: string): { ready: Promise<void>; go(): void; done: Promise<ChildResult> } {
  const env: NodeJS.ProcessEnv = { ...process.env, PASSTORE_SCRYPT_LOG_N: '14' };
  delete env.NODE_TEST_CONTEXT;
  const c = spawn(process.execPath, [CHILD, tv.config.db, tv.config.dbPasswordFile ?? '', 'alice', mode, String(COUNT), stateDir], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  c.stdout.on('data', (d) => {
    out += d;
    if (out.startsWith('ready\n')) markReady();
  });
  c.stderr.on('data', (d) => (err += d));
  c.stdin.write(`${PASSPHRASE}\n`);
  const done = new Promise<ChildResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      reject(new Error(`the ${mode} child did not finish in 120 s (a lock wait?):\n${out}${err}`));
    }, 120_000);
    c.on('close', (code) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`the ${mode} child exited ${code}:\n${out}${err}`));
      else resolve(JSON.parse(last) as ChildResult);
    });
  });
  // A child that dies before it is ready fails `done`; let `ready` not hang on it.
  done.catch(() => markReady());
  return { ready, go: () => c.stdin.end('go\n'), done };
}

const backends = [
  { name: 'sqlite', skip: false as string | false },
  { name: 'mariadb', skip: await mariadbSkip() },
];

for (const backend of backends) {
  describe(`audit appends from two processes at once (${backend.name})`, { skip: backend.skip }, () => {
    const pairs: Array<['standalone' | 'change', 'standalone' | 'change']> = [
      ['standalone', 'standalone'],
      ['change', 'standalone'],
      ['change', 'change'],
    ];
    for (const [a, b] of pairs) {
      test(`${a} records beside ${b} records: all ${2 * COUNT} written, the chain verifies`, async () => {
        const db = backend.name === 'mariadb' ? await createTestDatabase() : undefined;
        const tv = await createTestVault(db ? { db: db.url, dbPasswordFile: db.passwordFile } : {});
        const states = [mkdtempSync(join(tmpdir(), 'passtore-audit-a-')), mkdtempSync(join(tmpdir(), 'passtore-audit-b-'))];
        try {
          const children = [child(tv, a, states[0]!), child(tv, b, states[1]!)];
          await Promise.all(children.map((c) => c.ready));
          for (const c of children) c.go();
          const results = await Promise.all(children.map((c) => c.done));
          for (const [i, r] of results.entries()) {
            assert.deepEqual({ ok: r.ok, failed: r.failed, errors: r.errors }, { ok: COUNT, failed: 0, errors: [] }, `child ${i} (${i === 0 ? a : b})`);
          }
          const rows = await tv.session.store.listAudit();
          const ours = rows.filter((r) => r.action.startsWith('test-'));
          assert.equal(ours.length, 2 * COUNT);
          assert.equal(new Set(rows.map((r) => r.seq)).size, rows.length);
          assert.equal(await tv.run('audit --verify'), 0, tv.io.text());
          assert.match(tv.io.text(), /audit trail intact: \d+ records/);
        } finally {
          await tv.close();
          removeTestDir(tv);
          for (const s of states) rmSync(s, { recursive: true, force: true });
          await db?.drop();
        }
      });
    }
  });
}
