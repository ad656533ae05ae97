/**
 * Completion after `user@`: only the hosts that hold an entry for that user, not every
 * host (the shell's Completer on a real session and SQLite vault).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Completer } from '../../src/shell/completer.js';
import { createTestVault, removeTestDir } from '../support/scripted.js';

test('get USER@<Tab> offers only the hosts with an entry for USER', async () => {
  const tv = await createTestVault({ domain: 'example.org' });
  try {
    for (const h of ['db-01', 'db-02', 'ui-01', 'ui-02']) assert.equal(await tv.run(`host add ${h}`), 0, tv.io.text());
    assert.equal(await tv.run('add nicedb@db-02:mysql', 'Nicedb-Pw-1x', 'Nicedb-Pw-1x'), 0, tv.io.text());
    assert.equal(await tv.run('add ui-01', 'Root-Pw-ui-01x', 'Root-Pw-ui-01x'), 0, tv.io.text());
    const c = new Completer(tv.session);
    const names = async (line: string) => {
      const r = await c.complete(line);
      assert.equal(r.kind, 'complete');
      return r.kind === 'complete' ? r.completions : [];
    };
    assert.deepEqual(await names('get nicedb@'), ['nicedb@db-02']);
    assert.deepEqual(await names('get nicedb@db'), ['nicedb@db-02']);
    assert.deepEqual(await names('get nicedb@ui'), []);
    assert.deepEqual(await names('get root@'), ['root@ui-01']);
    assert.deepEqual(await names('get nobody@'), []);
    // Without a user part, every host as before, and the users.
    assert.deepEqual((await names('get ')).filter((n) => !n.endsWith('@')).sort(), ['db-01', 'db-02', 'ui-01', 'ui-02']);
    assert.ok((await names('get ')).includes('nicedb@'));
  } finally {
    await tv.close();
    removeTestDir(tv);
  }
});
