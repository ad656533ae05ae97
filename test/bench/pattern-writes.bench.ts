/**
 * Benchmark of a pattern write over 2,000 hosts on SQLite and on MariaDB: `add
 * root@wn-*:bench` (one password stored for every match, one transaction: per host a
 * version lookup, the insert and an audit record), then `update … --local --generate`
 * of the same entries (a new password each, the old one archived). Target: MariaDB
 * within 2× of SQLite.
 * The hosts are added through the Store API beforehand (not timed); each back end gets 1
 * warm-up run on other hosts and RUNS counted runs, each on a fresh service name.
 * MariaDB is skipped with the reason when the server is not there.
 *
 * Run: npm run build && node dist/test/bench/pattern-writes.bench.js
 */
import os from 'node:os';
import { createTestDatabase, mariadbUnavailable } from '../support/mariadb.js';
import { createTestVault, removeTestDir } from '../support/scripted.js';
import { fmt, runBench, stat, timeAsync, type Stat } from './bench-kit.js';

const HOSTS = 2_000;
const RUNS = 3;

async function measure(db?: { url: string; passwordFile: string }): Promise<{ add: Stat; update: Stat }> {
  const tv = await createTestVault(db ? { db: db.url, dbPasswordFile: db.passwordFile } : {});
  try {
    const at = new Date().toISOString();
    await tv.session.store.transaction(async (tx) => {
      for (let i = 0; i < HOSTS; i++) await tx.addHost({ fqdn: `wn-${String(i).padStart(4, '0')}.example.org`, address: null, port: 22, createdAt: at });
      for (let i = 0; i < 50; i++) await tx.addHost({ fqdn: `warm-${i}.example.org`, address: null, port: 22, createdAt: at });
    });
    if ((await tv.run('add root@warm-*:bench', 'y', 'Pw-warm-1', 'Pw-warm-1')) !== 0) throw new Error(`warm-up: ${tv.io.lines.at(-1)}`);
    const times: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      tv.io.lines.length = 0;
      let status = -1;
      times.push(await timeAsync(async () => (status = await tv.run(`add root@wn-*:bench${r}`, 'y', `Pw-bench-${r}`, `Pw-bench-${r}`))));
      if (status !== 0 || !tv.io.lines.at(-1)?.includes(`on ${HOSTS} hosts`)) throw new Error(`add: status ${status}: ${tv.io.lines.at(-1)}`);
    }
    // update --local --generate over the same 2,000 entries: old password asked once.
    const updates: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      let status = -1;
      updates.push(await timeAsync(async () => (status = await tv.run(`update root@wn-*:bench${r} --local --generate`, `Pw-bench-${r}`))));
      if (status !== 0) throw new Error(`update: status ${status}: ${tv.io.lines.at(-1)}`);
    }
    return { add: stat(times), update: stat(updates) };
  } finally {
    await tv.close();
    removeTestDir(tv);
  }
}

async function main(): Promise<number> {
  console.log(`pattern writes: add root@wn-*:benchN over ${HOSTS} hosts; load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
  const sqlite = await measure();
  const show = (name: string, m: { add: Stat; update: Stat }) =>
    console.log(`${name} add median ${fmt(m.add.median)} ms (min ${fmt(m.add.min)}, max ${fmt(m.add.max)}); update --local --generate median ${fmt(m.update.median)} ms (min ${fmt(m.update.min)}, max ${fmt(m.update.max)})`);
  show('SQLite: ', sqlite);
  const why = await mariadbUnavailable();
  if (why) {
    console.log(`MariaDB: skipped (${why})`);
    return 0;
  }
  const t = await createTestDatabase();
  let maria: { add: Stat; update: Stat };
  try {
    maria = await measure({ url: t.url, passwordFile: t.passwordFile });
  } finally {
    await t.drop();
  }
  show('MariaDB:', maria);
  const ratio = maria.add.median / sqlite.add.median;
  const updateRatio = maria.update.median / sqlite.update.median;
  console.log(`SUMMARY: MariaDB / SQLite: add ${ratio.toFixed(1)}× (target ≤ 2×: ${ratio <= 2 ? 'met' : 'MISSED'}), update --generate ${updateRatio.toFixed(1)}×; load at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  return ratio <= 2 ? 0 : 1;
}

await runBench(main);
