/**
 * A session's summary check (SummaryCheck, src/vault/summary.ts) gives the verdicts of the
 * stateless `verifySummary` while it keeps the entries' HMACs between checks: through
 * rounds of entries changed, added and removed (and resealed, as the vault does), each
 * passes; an entry changed without the summary is refused, also once its HMAC is kept and
 * after the kept ones were let go. The store is a stand-in that holds rows in memory (as
 * MariaDB: every check reads every stamp), and one whose data_version can stay still (as
 * SQLite with no other connection's commit) shows what is and is not read again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { EntryStamp, Store, VaultRow } from '../../src/storage/store.js';
import { Ciphertext } from '../../src/vault/ciphertext.js';
import { stampText } from '../../src/vault/entry-tags.js';
import { nextSummary, SummaryCheck, verifySummary } from '../../src/vault/summary.js';

function standIn(dataVersion?: () => number) {
  const state = {
    row: { id: 'vault-1', createdAt: '2026-12-05T00:00:00Z', dataKeyGeneration: 1, dataKeyCiphertext: Ciphertext.fromStorage(Buffer.alloc(40)), auditHead: null, keyring: null, summary: null } as VaultRow,
    stamps: [] as EntryStamp[],
    reads: 0,
  };
  const store = {
    dialect: 'mysql',
    transaction: <T>(fn: (tx: Store) => Promise<T>) => fn(store),
    getVault: async () => ({ ...state.row }),
    dataVersion: async () => dataVersion?.(),
    auditAfter: async () => [],
    entryStamps: async () => state.stamps.map((s) => ({ ...s })),
    entryStampTexts: async () => {
      state.reads++;
      return state.stamps.map(stampText);
    },
  } as unknown as Store;
  return { state, store };
}

const stamp = (i: number, version = 1, state: 'set' | 'unset' = 'set'): EntryStamp => ({ id: i, hostId: i, fqdn: `h-${i}.example.org`, user: 'root', service: i % 2 ? 'ssh' : 'ipmi', version, state });

test('kept HMACs give the stateless verdicts through changes, additions, removals, a listed twice text and the kept ones let go', async () => {
  const auditKey = randomBytes(32);
  const { state, store } = standIn();
  const reseal = async () => {
    state.row.summary = (await nextSummary(store, auditKey, { ...state.row, summary: null }))!;
  };
  // A text listed twice (no passtore writes that; SQL could) is counted twice, as the stateless check counts it.
  state.stamps = [...Array.from({ length: 300 }, (_, i) => stamp(i)), stamp(7)];
  await reseal();
  const check = new SummaryCheck(auditKey, 'vault-1');
  assert.equal((await check.check(store))?.entries, 301);
  for (let round = 1; round <= 12; round++) {
    // Some versions move on, some entries go, some come; every tenth round all versions move (the kept HMACs outgrow the current ones).
    state.stamps = state.stamps
      .filter((s) => (s.id + round) % 17 !== 0)
      .map((s) => (round % 10 === 0 || (s.id * round) % 5 === 0 ? { ...s, version: s.version + 1, state: round % 3 ? 'set' : 'unset' } : s));
    state.stamps.push(stamp(1000 + round), stamp(2000 + round, 3));
    await reseal();
    assert.ok(await verifySummary(store, auditKey), `round ${round}: stateless`);
    assert.ok(await check.check(store), `round ${round}: kept`);
    // One entry set back without the summary: refused by both, then put right.
    const victim = state.stamps[round * 7]!;
    const saved = { ...victim };
    victim.version = Math.max(0, victim.version - 1);
    await assert.rejects(verifySummary(store, auditKey), /an entry was rolled back with SQL/);
    await assert.rejects(check.check(store), /an entry was rolled back with SQL/, `round ${round}: kept, set back`);
    Object.assign(victim, saved);
    assert.ok(await check.check(store), `round ${round}: put right`);
  }
  assert.equal(check.counts.skipped, 0, 'no data_version here: every check reads every stamp');
  check.wipe();
});

test('with a data_version that stays still, only the first check reads the stamps; one that moves makes the next read them again', async () => {
  const auditKey = randomBytes(32);
  let dv = 5;
  const { state, store } = standIn(() => dv);
  state.stamps = Array.from({ length: 50 }, (_, i) => stamp(i));
  state.row.summary = (await nextSummary(store, auditKey, { ...state.row, summary: null }))!;
  const check = new SummaryCheck(auditKey, 'vault-1');
  await check.check(store);
  await check.check(store);
  assert.deepEqual([state.reads, check.counts.full, check.counts.skipped], [1, 1, 1]);
  // Another connection sets an entry back: data_version moves, the next check reads and refuses.
  state.stamps[3]!.version = 0;
  dv++;
  await assert.rejects(check.check(store), /an entry was rolled back with SQL/);
  // A refusal records nothing: the next check reads again (and refuses again), even with data_version still.
  await assert.rejects(check.check(store), /an entry was rolled back with SQL/);
  assert.equal(state.reads, 3);
  check.wipe();
});
