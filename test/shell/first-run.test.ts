/**
 * A site admin's first run, through the real shell on a pseudo-terminal: typing mistakes
 * at the new-passphrase and new-password prompts are said and asked again (up to three
 * rounds) instead of ending the program; Ctrl-C at such a prompt cancels cleanly.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BIN, makeHome, pause, plain, PtySession } from '../support/pty.js';

const CRON = join(dirname(BIN), 'passtore-cron.js');

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
      await sh.createVault(PASSPHRASE, { init: true });
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

  test('wrong passphrases: the delay is shown while it lasts; after three tries the status is said and is 3', async () => {
    const home = makeHome();
    let sh = new PtySession(['init'], home.env);
    try {
      await sh.createVault(PASSPHRASE, { init: true });
      sh.line('exit');
      await sh.exited();
      sh = new PtySession([], home.env);
      await answer(sh, 'Passphrase for ', 'wrong one');
      let m = await sh.expect('wrong passphrase; waiting 1 s');
      m = await sh.expect("error: wrong passphrase for operator '", { from: m });
      await answer(sh, 'Passphrase for ', 'wrong two', m);
      m = await sh.expect('wrong passphrase; waiting 2 s', { from: m });
      m = await sh.expect("error: wrong passphrase for operator '", { from: m });
      await answer(sh, 'Passphrase for ', 'wrong three', m);
      // The line counts down while the wait lasts.
      m = await sh.expect('wrong passphrase; waiting 4 s', { from: m });
      await sh.expect('wrong passphrase; waiting 3 s', { from: m });
      await sh.expect(/passtore: wrong passphrase for operator '[^']+'; the vault stays locked \(exit status 3\)/, { timeoutMs: 15_000 });
      assert.equal(await sh.exited(), 3);
      // The next unlock says how many failed since the last one.
      sh = new PtySession([], home.env);
      await answer(sh, 'Passphrase for ', PASSPHRASE);
      await sh.expect(/3 failed unlocks for \S+ since the last one \(see audit\)\n.*passtore> $/);
      sh.line('exit');
      assert.equal(await sh.exited(), 0);
    } finally {
      sh.kill();
      home.remove();
    }
  });
});

describe('errors a user can act on, in the shell', () => {
  test('a mistyped command, option or subcommand gets a did-you-mean and the usage', async () => {
    const home = makeHome();
    const sh = new PtySession(['init'], home.env);
    try {
      await sh.createVault(PASSPHRASE, { init: true });
      assert.match(await sh.command('lsit'), /error: unknown command 'lsit' \(did you mean list\?\); type help for the list/);
      assert.match(await sh.command('list --bogus'), /error: list: unknown option --bogus; usage: list/);
      assert.match(await sh.command('crtreq ui-01 --tpye rsa-2048'), /error: crtreq: unknown option --tpye \(did you mean --type\?\); usage: crtreq /);
      assert.match(await sh.command('host ad ui-01'), /error: host: unknown subcommand 'ad' \(did you mean add\?\)/);
      assert.match(await sh.command('help lsit'), /error: no command 'lsit' \(did you mean list\?\)/);
      const help = await sh.command('help host');
      assert.equal(help.match(/--port VALUE/g)?.length, 1, help);
      assert.match(await sh.command('host add'), /error: host add: missing HOST; usage: host add HOST/);
      assert.doesNotMatch(plain(sh.transcript), /To specify a positional|Unknown option/);
      sh.line('exit');
      assert.equal(await sh.exited(), 0);
    } finally {
      sh.kill();
      home.remove();
    }
  });

  test('crtreq --out refuses a missing directory before any key is made', async () => {
    const home = makeHome();
    const sh = new PtySession(['init'], home.env);
    try {
      await sh.createVault(PASSPHRASE, { init: true });
      await sh.command('host add ui-01');
      const missing = join(home.dir, 'no', 'such', 'dir');
      assert.match(await sh.command(`crtreq ui-01 --out ${missing}`), /error: crtreq: --out \S+ is not a directory; create it first \(nothing was made\)/);
      assert.ok(!existsSync(missing));
      assert.match(await sh.command('lcrt'), /no certificates in the vault yet/);
      sh.line('exit');
      assert.equal(await sh.exited(), 0);
    } finally {
      sh.kill();
      home.remove();
    }
  });
});

describe('passtore and passtore-cron on the command line', () => {
  test('option and command errors in their own words, with a did-you-mean and the usage', () => {
    const cases: Array<[string, string[], RegExp]> = [
      [BIN, ['--confg', 'x'], /^passtore: unknown option --confg \(did you mean --config\?\)\nusage: passtore/],
      [BIN, ['int'], /^passtore: unexpected argument 'int' \(did you mean init\?\)\nusage: passtore/],
      [CRON, ['frobnicate'], /^passtore-cron: unknown command 'frobnicate'\nusage: passtore-cron/],
      [CRON, ['rnew'], /^passtore-cron: unknown command 'rnew' \(did you mean renew\?\)\nusage: passtore-cron/],
      [CRON, ['--confg', 'x', 'run'], /^passtore-cron: unknown option --confg \(did you mean --config\?\)\nusage: passtore-cron/],
      [CRON, ['run', '--config'], /^passtore-cron: option --config needs a value\nusage: passtore-cron/],
      [CRON, ['run', '--dry-run'], /^passtore-cron: run: --dry-run is an option of renew only\nusage: passtore-cron/],
    ];
    for (const [bin, args, want] of cases) {
      const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input: '' });
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, want);
      assert.doesNotMatch(r.stderr, /To specify a positional/);
    }
  });
});
