/**
 * SIGTERM and SIGHUP while a command waits at a prompt, through the real shell on a
 * pseudo-terminal: the prompt ends as Ctrl-C ends it (a no-echo prompt cancelled, a y/N
 * question answered no), the command with it, and passtore exits at once with 128 plus
 * the signal's number, not after the 30 s it gives a running command; nothing is stored.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { makeHome, pause, plain, PtySession, type Home } from '../support/pty.js';

const PASSPHRASE = 'Stop prompt passphrase 8128';

let home: Home;

/** How many password entries the vault holds. */
function entryCount(): number {
  const db = new Database(join(home.dir, '.local', 'share', 'passtore', 'vault.db'), { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM entries').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** A shell on the vault, unlocked, at its prompt. */
async function openShell(): Promise<PtySession> {
  const sh = new PtySession([], home.env);
  await sh.expect(/Passphrase for [^\n]*: $/, { timeoutMs: 20_000 });
  await pause(30);
  sh.line(PASSPHRASE);
  await sh.expect(/\npasstore> $/, { timeoutMs: 30_000 });
  return sh;
}

before(async () => {
  home = makeHome(['domain = example.org']);
  const sh = new PtySession([], home.env);
  await sh.createVault(PASSPHRASE);
  for (const name of ['web1', 'web2']) assert.match(await sh.command(`host add ${name}`), new RegExp(`added host ${name}\\.example\\.org`));
  sh.line('exit');
  await sh.exited(10_000);
});

after(() => home.remove());

for (const [signal, line, prompt, what] of [
  ['SIGTERM', 'add web1', /Password for root@web1\.example\.org:ssh: $/, 'no-echo prompt'],
  ['SIGHUP', 'add web1', /Password for root@web1\.example\.org:ssh: $/, 'no-echo prompt'],
  ['SIGTERM', 'add web*', /\[y\/N\] $/, 'y/N question'],
] as const) {
  test(`${signal} while '${line}' waits at its ${what}: exits ${signal === 'SIGTERM' ? 143 : 129} at once, nothing stored`, async (t) => {
    const sh = await openShell();
    try {
      const start = sh.mark;
      sh.line(line);
      await sh.expect(prompt, { from: start });
      await pause(200);
      const sent = Date.now();
      process.kill(sh.pid, signal);
      const status = await sh.exited(10_000);
      const took = Date.now() - sent;
      t.diagnostic(`exited ${took} ms after ${signal}`);
      assert.equal(status, signal === 'SIGTERM' ? 143 : 129, `exit status 128 + the signal's number; screen:\n${plain(sh.transcript).slice(start)}`);
      assert.ok(took < 2_000, `passtore exited ${took} ms after ${signal} (not after its 30 s grace)`);
      assert.equal(entryCount(), 0, 'nothing was stored');
    } finally {
      sh.kill();
    }
  });
}
