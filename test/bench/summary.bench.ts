/**
 * Benchmark of the sealed summary of what is current (src/vault/summary.ts) at 10,000
 * entries on SQLite: what it adds to one change, and what its check costs.
 *
 * - one entry updated through `vault.transaction` (the summary moved inside it: the
 *   entry's stamp read before and after, the vault row read and rewritten) against the
 *   same update through a plain store transaction (no summary), alternated;
 * - `verifySummary` (one query of 10,000 stamps, 10,000 HMACs, the audit check) against
 *   that query alone; and a session's `SummaryCheck` (what runs at unlock and before each
 *   command that uses a secret): its first check, the next with no other connection's
 *   commit since, and the next after one.
 *
 * Medians of alternated runs, with the load average. Not assertions.
 * Run: npm run build && node dist/test/bench/summary.bench.js
 */
import { Secret } from '../../src/secret.js';
import { openStore } from '../../src/storage/open.js';
import { SummaryCheck, verifySummary } from '../../src/vault/summary.js';
import { createTestVault, removeTestDir } from '../support/scripted.js';
import { fmt, noteLoad, printLoadAtStart, printLoads, runBench, stat, timeAsync } from './bench-kit.js';

const ENTRIES = 10_000;
const RUNS = 21;

async function main(): Promise<number> {
  printLoadAtStart();
  const tv = await createTestVault({ domain: 'example.org' });
  try {
    const { session } = tv;
    const vault = session.vault;
    const store = session.store;
    const at = new Date().toISOString();
    const secret = Secret.fromString('a benchmark password');
    await vault.transaction(async (tx) => {
      for (let i = 0; i < ENTRIES; i++) {
        const fqdn = `wn-${String(i).padStart(5, '0')}.example.org`;
        const host = await tx.addHost({ fqdn, address: null, port: 22, createdAt: at });
        await tx.insertEntry({ hostId: host.id, user: 'root', service: 'ssh', version: 1, state: 'set', secretCiphertext: vault.sealPassword({ fqdn, user: 'root', service: 'ssh', version: 1 }, secret), updatedAt: at, updatedBy: 'alice' });
      }
    });
    noteLoad('filled');
    const key = vault.auditKey()!;
    const check = await verifySummary(store, key);
    if (check?.entries !== ENTRIES) throw new Error(`the summary counts ${check?.entries} entries`);

    // The check, and the query it is built on, alternated: before the store-only changes
    // below leave the digest behind (a check that fails also reads every stamp again).
    const verify: number[] = [];
    const query: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      verify.push(await timeAsync(() => verifySummary(store, key)));
      query.push(await timeAsync(() => store.entryStampTexts()));
    }
    noteLoad('checks');
    // A session's check (SummaryCheck): its first one (at unlock: every stamp read, every
    // HMAC computed and kept), then the same with its HMACs kept, and on SQLite with no
    // other connection's commit since (the vault record only).
    const first: number[] = [];
    const kept: number[] = [];
    const quiet: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const c = new SummaryCheck(key, vault.id);
      first.push(await timeAsync(() => c.check(store)));
      quiet.push(await timeAsync(() => c.check(store)));
      // A commit by another connection makes the next check read every stamp again.
      const other = await openStore(tv.config.db);
      await other.removeHost((await other.addHost({ fqdn: `other-${i}.example.org`, address: null, port: 22, createdAt: at })).id);
      await other.close();
      kept.push(await timeAsync(() => c.check(store)));
      c.wipe();
    }
    noteLoad('session checks');
    // One entry changed, alternately with and without the summary (the version is moved
    // on each time; the store-only runs leave the digest behind, which the timing ignores).
    const target = (await store.getEntry('wn-05000.example.org', 'root', 'ssh'))!;
    let version = target.version;
    const change = (withSummary: boolean) => async () => {
      const run = withSummary ? vault.transaction.bind(vault) : store.transaction.bind(store);
      await run(async (tx) => {
        const next = version + 1;
        await tx.updateEntry(target.id, version, { version: next, state: 'set', secretCiphertext: null, updatedAt: at, updatedBy: 'alice' });
        version = next;
      });
    };
    const withS: number[] = [];
    const without: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      withS.push(await timeAsync(change(true)));
      without.push(await timeAsync(change(false)));
    }
    noteLoad('changes');

    secret.wipe();

    const w = stat(withS).median;
    const o = stat(without).median;
    console.log(`${ENTRIES} entries, SQLite, ${RUNS} alternated runs each (medians, ms; min-max):`);
    console.log(`  one entry changed, vault.transaction with the summary: ${fmt(w)} (${fmt(stat(withS).min)}-${fmt(stat(withS).max)})`);
    console.log(`  the same change, plain store transaction:              ${fmt(o)} (${fmt(stat(without).min)}-${fmt(stat(without).max)})`);
    console.log(`  the summary's share of a change:                       ${fmt(w - o)} (ratio ${(w / o).toFixed(2)})`);
    console.log(`  verifySummary (stateless: every stamp, every HMAC):     ${fmt(stat(verify).median)} (${fmt(stat(verify).min)}-${fmt(stat(verify).max)})`);
    console.log(`  of it, reading every stamp (one query):                ${fmt(stat(query).median)} (${fmt(stat(query).min)}-${fmt(stat(query).max)})`);
    const line = (label: string, xs: number[]) => console.log(`  ${label.padEnd(57)}${fmt(stat(xs).median)} (${fmt(stat(xs).min)}-${fmt(stat(xs).max)})`);
    line("a session's first check (SummaryCheck, at unlock):", first);
    line('its next, no other connection wrote (vault record only):', quiet);
    line('its next, after another connection wrote (HMACs kept):', kept);
    printLoads();
    return 0;
  } finally {
    await tv.close();
    removeTestDir(tv);
  }
}

await runBench(main);
