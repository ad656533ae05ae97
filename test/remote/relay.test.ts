/**
 * The test site's delaying relay (PASSTORE_TEST_RELAY_MS, test/support/relay.ts): from
 * the vault namespace, an SSH server's banner arrives one round trip after the connect,
 * and each exchange after it takes one more; straight to the host, neither does. Every
 * remote test runs through it when the variable is set (for instance
 * `PASSTORE_TEST_RELAY_MS=20 node --test --test-concurrency=1 dist/test/remote/`).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Home } from '../support/pty.js';
import { siteSkip, TestSite } from '../support/site.js';
import { runInVault, vaultHome } from './helpers.js';

const RTT = 20;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('the delaying relay', { skip: siteSkip() }, () => {
  let site: TestSite | undefined;
  let home: Home | undefined;
  let state: string | undefined;
  const saved = process.env.PASSTORE_TEST_RELAY_MS;

  before(async () => {
    process.env.PASSTORE_TEST_RELAY_MS = String(RTT);
    try {
      site = await TestSite.start(1);
    } finally {
      if (saved === undefined) delete process.env.PASSTORE_TEST_RELAY_MS;
      else process.env.PASSTORE_TEST_RELAY_MS = saved;
    }
    home = vaultHome(site);
    state = mkdtempSync(join(tmpdir(), 'passtore-relay-'));
  });

  after(async () => {
    await site?.stop();
    home?.remove();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  test(`adds a round trip of ${RTT} ms to each exchange, and nothing straight to the host`, async () => {
    const h = site!.hosts[0]!;
    assert.ok(h.realAddress && h.realAddress !== h.address, 'the host is reached through its relay address');
    const probe = async (address: string) => {
      const r = await runInVault(site!, 'relay-probe', [home!.configFile, state!, address, '7']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { banner: number[]; exchange: number[] };
    };
    const relayed = await probe(h.address);
    const direct = await probe(h.realAddress!);
    const [rb, re, db, de] = [median(relayed.banner), median(relayed.exchange), median(direct.banner), median(direct.exchange)];
    console.log(`# through the relay: banner ${rb.toFixed(1)} ms, exchange ${re.toFixed(1)} ms; straight: banner ${db.toFixed(1)} ms, exchange ${de.toFixed(1)} ms`);
    assert.ok(Math.min(...relayed.banner) >= RTT - 1, `the banner comes a round trip after the connect (${relayed.banner.map((x) => x.toFixed(1)).join(', ')} ms)`);
    assert.ok(Math.min(...relayed.exchange) >= RTT - 1, `an exchange takes a round trip (${relayed.exchange.map((x) => x.toFixed(1)).join(', ')} ms)`);
    assert.ok(rb - db >= RTT - 2 && re - de >= RTT - 2, 'the relay is what adds it');
    assert.ok(re < RTT + 40, `and not much more than it (${re.toFixed(1)} ms, the machine's own time included)`);
  });
});
