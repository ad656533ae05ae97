/**
 * The real shell through a real pseudo-terminal: vault creation, unlock, the password
 * commands, the interactive-only rules, completion, history, and what never reaches the
 * screen. The canary checks search the whole transcript and the vault file.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, makeHome, pause, plain, PtySession, type Home } from '../support/pty.js';

const PASSPHRASE = 'Canary passphrase 4711';
const PW1 = 'Canary-Pw-one-93xq';
const PW2 = 'Canary-Pw-two-58kz';
const PW3 = 'Canary-Pw-three-21mv';

function vaultFileBytes(home: Home): Buffer {
  const base = join(home.dir, '.local', 'share', 'passtore', 'vault.db');
  return Buffer.concat([base, `${base}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f)));
}

function assertNoSecret(haystack: Buffer | string, secret: string, where: string): void {
  const text = typeof haystack === 'string' ? haystack : haystack.toString('latin1');
  const forms = [secret, Buffer.from(secret).toString('hex'), Buffer.from(secret).toString('hex').toUpperCase(), Buffer.from(secret).toString('base64')];
  for (const f of forms) assert.ok(!text.includes(f), `${where} holds a secret (${f === secret ? 'raw' : 'encoded'})`);
}

describe('passtore refuses to run without a terminal', () => {
  test('echo list | passtore exits 2 with the interactive-only message', () => {
    const home = makeHome();
    try {
      const r = spawnSync(process.execPath, [BIN], { input: 'list\n', env: home.env, encoding: 'utf8' });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /interactive by design/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.equal(r.stdout, '');
    } finally {
      home.remove();
    }
  });

  test('passtore < /dev/null exits 2', () => {
    const home = makeHome();
    const fd = openSync('/dev/null', 'r');
    try {
      const r = spawnSync(process.execPath, [BIN], { stdio: [fd, 'pipe', 'pipe'], env: home.env, encoding: 'utf8' });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /interactive by design/);
    } finally {
      closeSync(fd);
      home.remove();
    }
  });

  test('--help and --version work anywhere and open nothing', () => {
    const home = makeHome();
    try {
      const h = spawnSync(process.execPath, [BIN, '--help'], { input: '', env: home.env, encoding: 'utf8' });
      assert.equal(h.status, 0);
      assert.match(h.stdout, /usage: passtore/);
      const v = spawnSync(process.execPath, [BIN, '--version'], { input: '', env: home.env, encoding: 'utf8' });
      assert.equal(v.status, 0);
      assert.match(v.stdout, /^passtore \d+\.\d+\.\d+/);
      assert.ok(!existsSync(join(home.dir, '.local', 'share', 'passtore')), 'no vault directory is created');
    } finally {
      home.remove();
    }
  });
});

describe('the shell on a terminal', () => {
  let home: Home;
  let sh: PtySession;

  before(async () => {
    home = makeHome(['domain = example.org', 'reveal_timeout = 30']);
    sh = new PtySession([], home.env);
    await sh.createVault(PASSPHRASE);
  });

  after(async () => {
    sh.kill();
    home.remove();
  });

  test('the vault file is private (mode 0600)', () => {
    const st = statSync(join(home.dir, '.local', 'share', 'passtore', 'vault.db'));
    assert.equal(st.mode & 0o777, 0o600);
  });

  test('host add, add, get, update, list, delete', async () => {
    for (const h of ['ui-01', 'ui-02', 'ui-03', 'db-01']) assert.match(await sh.command(`host add ${h}`), /added host/);
    assert.match(await sh.command('add ui-01', PW1, PW1), /stored root@ui-01\.example\.org:ssh/);
    assert.match(await sh.command('add nicedb@db-01:mysql', PW3, PW3), /stored nicedb@db-01\.example\.org:mysql/);

    // get shows the password, and the next key erases it.
    const start = sh.mark;
    sh.line('get ui-01');
    await sh.expect(PW1, { from: start });
    await pause(100);
    sh.write('x');
    const end = await sh.expect(/password shown and cleared\r?\n.*passtore> $/, { from: start });
    const raw = sh.transcript;
    const shownAt = raw.lastIndexOf(PW1);
    assert.match(raw.slice(shownAt), /\r(\x1b\[\d+A)?\x1b\[J/, 'the line holding the password is erased');
    assert.ok(end > start);

    assert.match(await sh.command('update ui-01 --local', PW1, PW2, PW2), /updated root@ui-01\.example\.org:ssh/);
    const wrongOld = await sh.command('update ui-01 --local', 'not the old one');
    assert.match(wrongOld, /old password does not match/);

    const listing = await sh.command('list');
    assert.match(listing, /ui-01\s+root:ssh/);
    assert.match(listing, /db-01\s+nicedb:mysql/);
    assert.match(listing, /4 hosts, 2 entries/);

    assert.match(await sh.command('delete nicedb@db-01:mysql', 'y'), /deleted nicedb@db-01\.example\.org:mysql \(kept in history\)/);
    assert.doesNotMatch(await sh.command('list db-*'), /nicedb/);
  });

  test('get refuses a pattern', async () => {
    const out = await sh.command('get ui-*');
    assert.match(out, /error: bad entry 'ui-\*': takes one exact host, not a pattern/);
  });

  test('tab completion of ui-<TAB> and of a pattern', async () => {
    let start = sh.mark;
    sh.write('get ui-');
    await sh.tab();
    await sh.expect('get ui-0', { from: start });
    // A second Tab lists the matches (as in bash). Under a loaded machine a Tab can land
    // while readline is still busy with the first completion: press it again then.
    let listed = false;
    for (let i = 0; i < 3 && !listed; i++) {
      await sh.tab();
      listed = await sh.expect(/ui-01\s+ui-02\s+ui-03/, { from: start, timeoutMs: 3000 }).then(() => true, () => false);
    }
    assert.ok(listed, `Tab Tab lists ui-01 ui-02 ui-03; screen: ${JSON.stringify(plain(sh.transcript).slice(start - 200))}`);
    sh.write('\x15'); // Ctrl-U: clear the line
    await pause(100);
    sh.write('\r');
    await sh.expect(/passtore> $/, { from: start + 5 });

    sh.write('\x15'); // start from an empty line whatever the Tabs above left
    await pause(200);
    start = sh.mark;
    sh.write('list ui-*');
    let shown = false;
    for (let i = 0; i < 3 && !shown; i++) {
      await sh.tab();
      shown = await sh.expect(/ui-01\s+ui-02\s+ui-03/, { from: start, timeoutMs: 3000 }).then(() => true, () => false);
    }
    assert.ok(shown, `Tab on a pattern shows what it matches; screen: ${JSON.stringify(plain(sh.transcript).slice(start - 200))}`);
    sh.write('\x15\r');
    await sh.expect(/passtore> $/, { from: start + 5 });

    start = sh.mark;
    sh.write('he');
    await sh.tab();
    await sh.expect('help', { from: start });
    sh.write('\x15\r');
    await sh.expect(/passtore> $/, { from: start + 5 });
  });

  test('history never holds a secret (Up arrow after secret prompts)', async () => {
    const start = sh.mark;
    for (let i = 0; i < 12; i++) {
      sh.write('\x1b[A');
      await pause(60);
    }
    await pause(200);
    const seen = plain(sh.transcript).slice(start);
    for (const s of [PASSPHRASE, PW1, PW2, PW3]) assert.ok(!seen.includes(s), 'a secret was recalled from history');
    assert.match(seen, /(get|update|add|host add|list)/, 'history recalls earlier commands');
    sh.write('\x15\r');
    await sh.expect(/passtore> $/, { from: start });
  });

  test('source runs 200 host adds; a script with get or add stops at that line', async () => {
    const script = join(home.dir, 'hosts.txt');
    writeFileSync(script, ['# 200 worker nodes', ...Array.from({ length: 200 }, (_, i) => `host add wn-${String(i).padStart(3, '0')}`)].join('\n'));
    const out = await sh.command(`source ${script}`);
    assert.match(out, /hosts\.txt: 200 commands run/);
    assert.match(await sh.command('list wn-1??'), /100 hosts, 0 entries/);

    const bad = join(home.dir, 'bad.txt');
    writeFileSync(bad, ['host add ok-01', 'get ui-01', 'host add never-01'].join('\n'));
    const refused = await sh.command(`source ${bad}`);
    assert.match(refused, /get reveals a secret and cannot run from a script/);
    assert.match(refused, /bad\.txt:2: stopped at the first failure/);
    assert.ok(!refused.includes(PW2), 'nothing revealed');
    assert.match(await sh.command('list never-01'), /no host matches|unknown host/);

    const bad2 = join(home.dir, 'bad2.txt');
    writeFileSync(bad2, ['add ui-02', 'host add never-02'].join('\n'));
    const refused2 = await sh.command(`source ${bad2} --keep-going`);
    assert.match(refused2, /add asks for a secret and cannot run from a script/);
    assert.match(await sh.command('list ui-02'), /ui-02\s+-/, 'nothing was stored for ui-02');
  });

  test('bad input: one line each, nothing stored', async () => {
    for (const [input, why] of [
      ['host add a;b', /bad host name 'a;b'/],
      ['host add $(x)', /bad host name '\$\(x\)'/],
      ['host add ../x', /bad host name '\.\.\/x': empty label/],
      [`host add ${'a'.repeat(64)}`, /longer than 63/],
      [`host add ${'a.'.repeat(150)}b`, /too long/],
      ['add', /missing SPEC/],
      ['list "unterminated', /unterminated double quote/],
      ['frobnicate', /unknown command 'frobnicate'/],
      ['get root@ui-01:ssh:extra', /bad entry/],
    ] as const) {
      const out = await sh.command(input);
      const errors = out.split('\n').filter((l) => l.startsWith('error:'));
      assert.equal(errors.length, 1, `one error line for ${input}: ${out}`);
      assert.match(errors[0]!, why);
      assert.doesNotMatch(out, /\n\s+at /, 'no stack trace');
    }
    assert.doesNotMatch(await sh.command('list'), /a;b|\$\(x\)/);
  });

  test('audit names the operator and the chain verifies', async () => {
    const out = await sh.command('audit --last 400');
    assert.match(out, /reveal\s+root@ui-01\.example\.org:ssh/);
    assert.match(out, /update\s+root@ui-01\.example\.org:ssh/);
    assert.match(await sh.command('audit --verify'), /audit trail intact: \d+ records/);
  });

  test('lock wipes the key; the next command asks the passphrase again; exit leaves with 0', async () => {
    assert.match(await sh.command('lock'), /locked/);
    const out = await sh.command('list ui-01', PASSPHRASE);
    assert.match(out, /Passphrase for /);
    assert.match(out, /ui-01/);
    sh.line('exit');
    assert.equal(await sh.exited(), 0);
  });

  test('no secret on the screen or in the vault file', () => {
    const screen = sh.transcript;
    for (const s of [PASSPHRASE, PW2, PW3]) assertNoSecret(screen, s, 'the screen');
    assert.equal(screen.split(PW1).length - 1, 1, 'the one revealed password appeared once, in the reveal');
    const file = vaultFileBytes(home);
    for (const s of [PASSPHRASE, PW1, PW2, PW3]) assertNoSecret(file, s, 'the vault file');
  });
});

describe('start-up errors', () => {
  test('an unknown config key: one line naming file, line and key; exit 2', async () => {
    const home = makeHome(['domain = example.org', '', 'colour = blue']);
    const sh = new PtySession([], home.env);
    try {
      assert.equal(await sh.exited(), 2);
      const out = plain(sh.transcript).trim();
      assert.equal(out.split('\n').length, 1);
      assert.match(out, new RegExp(`${home.configFile.replace(/[.]/g, '\\.')}:3: colour: unknown key`));
    } finally {
      sh.kill();
      home.remove();
    }
  });

  test('an unreadable config: one line, exit 2', async () => {
    const home = makeHome();
    const sh = new PtySession(['--config', join(home.dir, 'missing.conf')], home.env);
    try {
      assert.equal(await sh.exited(), 2);
      assert.match(plain(sh.transcript), /missing\.conf: cannot read the configuration \(ENOENT\)/);
    } finally {
      sh.kill();
      home.remove();
    }
  });

  test('a wrong passphrase is refused with a clear error, then the right one unlocks', async () => {
    const home = makeHome();
    let sh = new PtySession(['init'], home.env);
    try {
      await sh.expect('New vault passphrase');
      sh.line(PASSPHRASE);
      await sh.expect('(again): ');
      sh.line(PASSPHRASE);
      await sh.expect('passtore> ');
      sh.line('exit');
      await sh.exited();
      sh = new PtySession([], home.env);
      await sh.expect('Passphrase for ');
      sh.line('wrong passphrase');
      const t0 = Date.now();
      await sh.expect(/error: wrong passphrase for operator '[^']+'/);
      assert.ok(Date.now() - t0 >= 900, 'a delay follows a wrong passphrase');
      await sh.expect(/Passphrase for [^\n]*: $/, { from: sh.mark - 40 });
      sh.line(PASSPHRASE);
      await sh.expect('passtore> ');
      sh.line('exit');
      assert.equal(await sh.exited(), 0);
    } finally {
      sh.kill();
      home.remove();
    }
  });
});
