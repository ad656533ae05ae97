/**
 * MariaDB stopped and restarted while passtore runs: the vault on MariaDB, the real shell
 * open and unlocked on a pseudo-terminal, and a second session (in this process) adding
 * passwords in a loop, when the test's own private server is stopped. During
 * the outage every command fails with one line and status 1, within seconds: in the open
 * shell, in the looping session, a `passtore` started then (status 1), and passtore-cron
 * (status 3, "the database cannot be opened", as its manual says). The server is started
 * again on the same socket and port; the same shell and session go on working,
 * and the vault is complete: every add that reported success holds its password, every
 * add that failed holds nothing or exactly its password (the commit may have landed with
 * its answer lost), the other passwords are intact, and the audit chain verifies. A rekey
 * of 3,000 secrets in a second vault is under way when the server stops: it fails with
 * one line (or completes), and every secret opens with the data key the vault records.
 *
 * The server is this test process's own (test/support/mariadb.ts starts a private one per
 * process): the outage stops and restarts that server only, never the machine's MariaDB
 * or another test's. It is started again in a finally block, failing that in the after
 * hook; should the process die during the outage, the server's reaper removes it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCron, show } from '../cron/helpers.js';
import { mariadbSkip, privateMariadb } from '../support/mariadb.js';
import { createTestVault, PASSPHRASE, removeTestDir, ScriptedIo } from '../support/scripted.js';
import { Secret } from '../../src/secret.js';
import { defaultConfig } from '../../src/config.js';
import { Session } from '../../src/session.js';
import { endOfFile, fq, homeFor, inspect, newPlace, pause, rootSpec, Shell, Tally, type Expectation, type Place } from './harness.js';

const tally = new Tally('outage.test');
const skip = await mariadbSkip();
const cleanups: Array<() => Promise<unknown> | unknown> = [];

/** Starts this process's server again unless it runs; waits until it answers. */
async function ensureMariadb(): Promise<void> {
  await (await privateMariadb()).start();
}

after(async () => {
  try {
    if (!skip) await ensureMariadb();
  } finally {
    await endOfFile(tally, cleanups);
  }
});

const PW = (n: number | string) => `Outage-Pw-${n}-z4`;
const BIG = 3000;

async function openSession(place: Place): Promise<{ session: Session; io: ScriptedIo }> {
  const io = new ScriptedIo();
  const session = await Session.open({ config: { ...defaultConfig(), domain: 'example.org', db: place.db, dbPasswordFile: place.passwordFile, operator: 'alice' }, prompt: io, out: io, terminal: true, operator: 'alice', stateDir: place.dir });
  cleanups.push(() => session.close());
  io.answers.push(PASSPHRASE);
  await session.unlock(1);
  return { session, io };
}

describe('MariaDB stopped and restarted while the shell and a session run', { skip }, () => {
  let p: Place;
  /** A second vault, of 3,000 entries, whose rekey is under way when the server stops. */
  let big: Place;
  let keyfile: string;
  let configFile: string;
  let dataHome: string;
  const fixed: Record<string, string> = {};
  /** Every distinct line a command printed when it failed during the outage. */
  const failureLines = new Set<string>();

  before(async () => {
    p = await newPlace('mariadb', 'outage');
    cleanups.push(() => p.remove());
    const tv = await createTestVault({ db: p.db, dbPasswordFile: p.passwordFile });
    try {
      for (const n of [1, 2, 3]) {
        assert.equal(await tv.run(`host add ui-0${n}`), 0);
        assert.equal(await tv.run(`add ui-0${n}`, PW(n), PW(n)), 0);
        fixed[rootSpec(`ui-0${n}`)] = PW(n);
      }
      // Hosts for the looping session to add passwords to, one per command.
      await tv.session.store.transaction(async (tx) => {
        for (let i = 0; i < 600; i++) await tx.addHost({ fqdn: fq(`bulk-${String(i).padStart(3, '0')}`), address: null, port: 22, createdAt: new Date().toISOString() });
      });
      keyfile = join(p.dir, 'cron.key');
      assert.equal(await tv.run(`keyfile create ${keyfile}`, PASSPHRASE), 0, tv.io.text());
    } finally {
      await tv.close();
      removeTestDir(tv);
    }
    big = await newPlace('mariadb', 'outage-rekey');
    cleanups.push(() => big.remove());
    const bv = await createTestVault({ db: big.db, dbPasswordFile: big.passwordFile });
    try {
      const now = new Date().toISOString();
      await bv.session.vault.transaction(async (tx) => {
        for (let i = 0; i < BIG; i++) {
          const fqdn = fq(`wn-${i}`);
          const host = await tx.addHost({ fqdn, address: null, port: 22, createdAt: now });
          const secretCiphertext = bv.session.vault.sealPassword({ fqdn, user: 'root', service: 'ssh', version: 1 }, Secret.fromString(PW(`wn-${i}`)));
          await tx.insertEntry({ hostId: host.id, user: 'root', service: 'ssh', version: 1, state: 'set', secretCiphertext, updatedAt: now, updatedBy: 'alice' });
        }
      });
    } finally {
      await bv.close();
      removeTestDir(bv);
    }
    dataHome = join(p.dir, 'data');
    mkdirSync(dataHome, { mode: 0o700 });
    configFile = join(p.dir, 'passtore.conf');
    writeFileSync(configFile, `domain = example.org\ndb = ${p.db}\ndb_password_file = ${p.passwordFile}\nkeyfile = ${keyfile}\n`, { mode: 0o600 });
  });

  test('each command during the outage fails with one line and status 1; afterwards the same shell and session go on and the vault is complete', async () => {
    const home = homeFor(p);
    cleanups.push(() => home.remove());
    const sh = new Shell([], home.env);
    cleanups.push(() => sh.kill());
    await sh.unlock();
    assert.match(await sh.command('list ui-*'), /3 hosts, 3 entries/);

    // The looping session: add bulk-NNN, one after the other, until told to stop.
    const { session, io } = await openSession(p);
    const rekeyer = await openSession(big);
    const outage: Array<{ what: string; status: number; lines: string[]; ms: number; shown?: string }> = [];
    const results: Array<{ host: string; status: number; lines: string[]; ms: number; phase: string }> = [];
    let phase = 'before';
    let stop = false;
    const runLoop = async () => {
      for (let i = 0; i < 600 && !stop; i++) {
        const host = `bulk-${String(i).padStart(3, '0')}`;
        io.answers.length = 0;
        io.lines.length = 0;
        io.answers.push(PW(host), PW(host));
        const t = Date.now();
        const status = await session.execute(`add ${host}`);
        results.push({ host, status, lines: [...io.lines], ms: Date.now() - t, phase });
        await pause(15);
      }
    };
    let loop: Promise<void> = Promise.resolve();

    let t0 = 0;
    let down = 0;
    const f = tally.fault('MariaDB shut down and restarted under a running shell, a session adding passwords, a new passtore and passtore-cron');
    const g = tally.fault(`MariaDB shut down while a rekey of ${BIG} secrets is under way`);
    let rekey: Promise<{ status: number; lines: string[]; ms: number }> | undefined;
    try {
      loop = runLoop();
      await pause(300);
      // The rekey: a transaction of a few thousand statements, under way when the server stops.
      rekeyer.io.answers.push('y');
      const tr = Date.now();
      rekey = rekeyer.session.execute('rekey').then((status) => ({ status, lines: [...rekeyer.io.lines], ms: Date.now() - tr }));
      await pause(150);
      phase = 'stopping';
      t0 = Date.now();
      await (await privateMariadb()).stop();
      phase = 'down';
      down = Date.now();
      // The open shell: one error line per command, and the prompt again.
      for (const line of ['list', 'lcrt', `add ui-01`, 'audit --verify', 'host add ui-09']) {
        const t = Date.now();
        const out = await sh.command(line, [], { timeoutMs: 30_000 });
        const lines = out.split('\n').filter((l) => l.trim() !== '');
        outage.push({ what: `shell: ${line}`, status: lines.length === 1 && /^error: /.test(lines[0]!) ? 1 : -1, lines, ms: Date.now() - t });
      }
      // A passtore started now.
      {
        const t = Date.now();
        const late = new Shell([], home.env);
        cleanups.push(() => late.kill());
        const exit = await late.exited(30_000);
        outage.push({ what: 'passtore started during the outage', status: exit.code, lines: late.screen.split('\n').filter((l) => l.trim() !== ''), ms: Date.now() - t });
      }
      // passtore-cron: "the database cannot be opened" is status 3 (passtore-cron(8)).
      for (const cmd of ['run', 'check']) {
        const t = Date.now();
        const r = await runCron(['--config', configFile, cmd], { dataHome, timeoutMs: 30_000 });
        outage.push({ what: `passtore-cron ${cmd}`, status: r.code ?? -1, lines: r.lines.concat(r.stderr.split('\n').filter((l) => l.trim() !== '')), ms: Date.now() - t, shown: show(r) });
      }
    } finally {
      phase = 'starting';
      await ensureMariadb();
      phase = 'after';
    }
    const outageMs = Date.now() - down;
    // Let the loop add a few more after the restart, then stop it.
    const until = Date.now() + 15_000;
    while (results.filter((r) => r.phase === 'after' && r.status === 0).length < 5 && Date.now() < until) await pause(50);
    stop = true;
    await loop;
    const rekeyed = await rekey!;
    for (const r of results) if (r.status !== 0) r.lines.forEach((l) => failureLines.add(l));
    for (const o of outage) o.lines.forEach((l) => failureLines.add(l));
    rekeyed.lines.forEach((l) => failureLines.add(l));

    /** Runs one fault's checks; a failure is recorded, and thrown once both ran. */
    const errors: unknown[] = [];
    async function checks(fault: { fail(why: string): void; done(): void }, fn: () => Promise<void>): Promise<void> {
      try {
        await fn();
      } catch (e) {
        fault.fail((e as Error).message);
        errors.push(e);
      } finally {
        fault.done();
      }
    }

    await checks(f, async () => {
      // During the outage: one line each, status 1 (3 for passtore-cron), nothing slow.
      for (const o of outage) {
        assert.equal(o.lines.length, 1, `${o.what}: one line, not ${JSON.stringify(o.lines)}`);
        assert.doesNotMatch(o.lines[0]!, /internal|at .*\.js|Error:/, `${o.what}: a clear line: ${o.lines[0]}`);
        assert.match(o.lines[0]!, /database/, `${o.what}: names the database: ${o.lines[0]}`);
        assert.ok(o.ms < 30_000, `${o.what}: answered in ${o.ms} ms`);
        assert.equal(o.status, o.what.startsWith('passtore-cron') ? 3 : 1, `${o.what}: its status\n${o.shown ?? ''}`);
      }
      const failed = results.filter((r) => r.status !== 0);
      assert.ok(results.some((r) => r.phase === 'down' && r.status !== 0), 'the looping session ran commands during the outage');
      for (const r of failed) {
        assert.equal(r.status, 1, `add ${r.host} (${r.phase}): status 1`);
        assert.equal(r.lines.length, 1, `add ${r.host} (${r.phase}): one line, not ${JSON.stringify(r.lines)}`);
        assert.doesNotMatch(r.lines[0]!, /internal/, `add ${r.host} (${r.phase}): a clear line: ${r.lines[0]}`);
        assert.ok(r.ms < 30_000, `add ${r.host}: answered in ${r.ms} ms`);
      }
      assert.ok(results.some((r) => r.phase === 'after' && r.status === 0), 'the session works again after the restart');

      // The same shell goes on.
      assert.match(await sh.command('list ui-*'), /3 hosts, 3 entries/);
      assert.match(await sh.command('audit --verify'), /audit trail intact/);
      await sh.close();

      // The vault is complete.
      const want: Expectation = { passwords: Object.fromEntries(Object.entries(fixed).map(([k, v]) => [k, [v]])) };
      for (const r of results) want.passwords![rootSpec(r.host)] = r.status === 0 ? [PW(r.host)] : [PW(r.host), null];
      const i = await inspect(p, want);
      assert.deepEqual(tally.record(i), [], 'the vault is sound after the outage');
      const committedDespiteError = failed.filter((r) => i.values.has(rootSpec(r.host))).length;
      console.log(
        `outage: ${Math.round(outageMs / 100) / 10} s down (shutdown took ${Math.round((down - t0) / 100) / 10} s); ` +
          `${results.length} adds by the looping session, ${failed.length} failed with one line each (${[...new Set(failed.map((r) => r.lines[0]))].join(' | ')}), ` +
          `${committedDespiteError} of those committed anyway; ${outage.length} other commands during the outage: ${[...new Set(outage.map((o) => o.lines[0]))].join(' | ')}`,
      );
    });

    // The rekey failed with one line (its transaction rolled back) or completed; either
    // way every secret opens with the data key the vault records.
    await checks(g, async () => {
      assert.ok(rekeyed.ms < 30_000, `the rekey answered in ${rekeyed.ms} ms`);
      if (rekeyed.status !== 0) {
        assert.equal(rekeyed.status, 1);
        assert.equal(rekeyed.lines.length, 1, JSON.stringify(rekeyed.lines));
        assert.match(rekeyed.lines[0]!, /^error: database: /);
      }
      const passwords: Expectation['passwords'] = {};
      for (let i = 0; i < BIG; i++) passwords[rootSpec(`wn-${i}`)] = [PW(`wn-${i}`)];
      const bi = await inspect(big, { passwords });
      assert.deepEqual(tally.record(bi), [], 'every secret of the rekeyed vault opens');
      if (rekeyed.status === 0) assert.equal(bi.generation, 2, 'a rekey that reported success committed');
      console.log(`outage: the rekey of ${BIG} secrets under way at the shutdown ${rekeyed.status === 0 ? 'completed' : `failed after ${rekeyed.ms} ms with "${rekeyed.lines[0]}"`}; data key generation now ${bi.generation}, every secret opens`);
    });
    if (errors.length > 0) throw errors[0];
  });

  test('every failure line during the outage names the database as its cause', () => {
    assert.ok(failureLines.size > 0, 'the outage test ran');
    for (const l of failureLines) assert.match(l, /database/, l);
  });
});
