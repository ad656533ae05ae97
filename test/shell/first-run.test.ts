/**
 * A site admin's first run, through the real shell on a pseudo-terminal: typing mistakes
 * at the new-passphrase and new-password prompts are said and asked again (up to three
 * rounds) instead of ending the program; Ctrl-C at such a prompt cancels cleanly.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeHome, pause, plain, PtySession } from '../support/pty.js';

const PASSPHRASE = 'First-run passphrase 0815';
const NEW_PASSPHRASE = 'Second passphrase 4242x';
const BOB = 'Bob passphrase of 2026';

/** Answers a no-echo prompt matching `prompt` (seen after `from`) with `text`. */
async function answer(sh: PtySession, prompt: string | RegExp, text: string, from = sh.mark): Promise<number> {
  const at = await sh.expect(prompt, { from });
  await pause(30);
  sh.line(text);
  return at;
}

describe('forgiving prompts', () => {
  test('a vault is created after one short and one mismatched passphrase; passwd and operator add forgive the same', async () => {
    const home = makeHome();
    let sh = new PtySession(['init'], home.env);
    try {
      await answer(sh, 'New vault passphrase for ', 'too short');
      let m = await sh.expect('a passphrase needs at least 12 characters; try again (2 tries left)');
      await answer(sh, 'New vault passphrase for ', PASSPHRASE, m);
      await answer(sh, '(again): ', 'Not the same passphrase');
      m = await sh.expect('the two entries differ; try again (1 try left)');
      await answer(sh, 'New vault passphrase for ', PASSPHRASE, m);
      await answer(sh, '(again): ', PASSPHRASE);
      await sh.expect(/created a vault in sqlite:.*\n.*passtore> $/);
      assert.doesNotMatch(plain(sh.transcript), /error:/, 'no error: the mistakes were asked again');

      // passwd: a mismatch, then the new passphrase.
      m = sh.mark;
      sh.line('passwd');
      await answer(sh, 'Current passphrase for ', PASSPHRASE, m);
      await answer(sh, 'New passphrase for ', NEW_PASSPHRASE);
      await answer(sh, '(again): ', `${NEW_PASSPHRASE}!`);
      m = await sh.expect('the two entries differ; try again (2 tries left)');
      await answer(sh, 'New passphrase for ', NEW_PASSPHRASE, m);
      await answer(sh, '(again): ', NEW_PASSPHRASE);
      await sh.expect(/passphrase changed for \S+\n.*passtore> $/);

      // operator add: a short one, then a good one.
      m = sh.mark;
      sh.line('operator add bob');
      await answer(sh, 'New passphrase for operator bob: ', 'bob', m);
      m = await sh.expect('a passphrase needs at least 12 characters; try again (2 tries left)');
      await answer(sh, 'New passphrase for operator bob: ', BOB, m);
      await answer(sh, '(again): ', BOB);
      await sh.expect(/added operator bob\n.*passtore> $/);
      sh.line('exit');
      assert.equal(await sh.exited(), 0);

      // The changed passphrase opens the vault.
      sh = new PtySession([], home.env);
      await answer(sh, 'Passphrase for ', NEW_PASSPHRASE);
      await sh.expect('passtore> ');
      sh.line('exit');
      assert.equal(await sh.exited(), 0);
      for (const secret of [PASSPHRASE, NEW_PASSPHRASE, BOB]) assert.ok(!sh.transcript.includes(secret));
    } finally {
      sh.kill();
      home.remove();
    }
  });

  test('three rounds of mistakes give up with status 2 and no vault', async () => {
    const home = makeHome();
    const sh = new PtySession(['init'], home.env);
    try {
      let m = 0;
      for (let i = 0; i < 3; i++) {
        await answer(sh, 'New vault passphrase for ', PASSPHRASE, m);
        await answer(sh, '(again): ', `${PASSPHRASE} but other`);
        if (i < 2) m = await sh.expect(`try again (${2 - i} ${i === 1 ? 'try' : 'tries'} left)`, { from: m });
      }
      await sh.expect('passtore: the two entries differ; nothing was changed (3 tries)');
      assert.equal(await sh.exited(), 2);
      const again = new PtySession([], home.env);
      try {
        await again.expect('Create one now? [y/N] ');
      } finally {
        again.kill();
      }
    } finally {
      sh.kill();
      home.remove();
    }
  });

  test('Ctrl-C at a new-passphrase prompt cancels: one line, no vault; at a new password in the shell, nothing stored', async () => {
    const home = makeHome();
    let sh = new PtySession(['init'], home.env);
    try {
      await sh.expect('New vault passphrase for ');
      await pause(30);
      sh.write('\x03');
      const status = await sh.exited();
      assert.notEqual(status, 0);
      const lines = plain(sh.transcript).split('\n').filter((l) => l.trim() !== '' && !l.startsWith('New vault passphrase'));
      assert.deepEqual(lines.map((l) => l.trim()), ['passtore: cancelled; no vault was created']);

      sh = new PtySession(['init'], home.env);
      await answer(sh, 'New vault passphrase for ', PASSPHRASE);
      await answer(sh, '(again): ', PASSPHRASE);
      await sh.expect('passtore> ');
      assert.match(await sh.command('host add ui-01'), /added host/);
      const m = sh.mark;
      sh.line('add ui-01');
      await answer(sh, 'Password for ', 'Some-Password-1', m);
      await sh.expect('(again): ');
      await pause(30);
      sh.write('\x03');
      await sh.expect(/error: cancelled[^\n]*\n.*passtore> $/, { from: m });
      assert.match(await sh.command('list'), /1 host, 0 entries|no entries/);
      sh.line('exit');
      assert.equal(await sh.exited(), 0);
      assert.ok(existsSync(join(home.dir, '.local', 'share', 'passtore', 'vault.db')));
    } finally {
      sh.kill();
      home.remove();
    }
  });
});
