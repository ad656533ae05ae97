/**
 * Long tables on a terminal go through $PAGER, as git's do; short ones, and anything with
 * PAGER=cat, go straight to the screen. The pager here records what it was given to a
 * file, so the test sees the table went to it and not to the screen; on an 80-column
 * terminal the table fits 80 columns.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeHome, pause, PtySession, type Home } from '../support/pty.js';

const PASSPHRASE = 'pager test passphrase';

describe('the pager', () => {
  let home: Home;
  let sh: PtySession;
  let paged: string;

  before(async () => {
    home = makeHome(['domain = example.org']);
    paged = join(home.dir, 'paged.txt');
    sh = new PtySession([], { ...home.env, PAGER: `/bin/sh -c "cat > '${paged}'"` });
    await sh.createVault(PASSPHRASE);
    const script = join(home.dir, 'hosts.txt');
    writeFileSync(script, Array.from({ length: 60 }, (_, i) => `host add wn-${String(i).padStart(2, '0')} --address 10.1.0.${i + 1}`).join('\n'));
    assert.match(await sh.command(`source ${script}`), /60 commands run/);
  });

  after(() => {
    sh.kill();
    home.remove();
  });

  test('a table taller than the screen (40 rows) goes to $PAGER, not to the screen', async () => {
    const out = await sh.command('list');
    const text = readFileSync(paged, 'utf8');
    assert.match(text, /^HOST\s+ADDRESS\s+ENTRIES\s+LOGIN\n/);
    assert.equal(text.trim().split('\n').length, 61, 'the header and the 60 hosts');
    assert.match(text, /wn-59\s+10\.1\.0\.60:22\s+-/);
    assert.doesNotMatch(out, /wn-59/, 'the rows did not go to the screen');
    assert.match(out, /60 hosts, 0 entries/, 'the count line after the table is on the screen');
  });

  test('a short table goes to the screen', async () => {
    writeFileSync(paged, '');
    const out = await sh.command('list wn-0?');
    assert.match(out, /wn-09\s+10\.1\.0\.10:22/);
    assert.equal(readFileSync(paged, 'utf8'), '', 'the pager did not run');
  });
});
