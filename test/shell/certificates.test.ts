/**
 * The certificate readers through the real shell and a real pseudo-terminal (issue 12):
 * PKCS#12 passphrases asked at the no-echo prompt once per file, the offer to keep the
 * passphrase for the rest of the run, a wrong one refused clearly, getkey HOST FILE.p12,
 * and getcrt on a FIFO answering at once with the prompt back. The passphrases never
 * reach the screen, nor the history (Up after the prompt).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeHome, pause, plain, PtySession, type Home } from '../support/pty.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { pkcs12 } from '../x509/fixture-formats.js';

const PASSPHRASE = 'Canary passphrase 5150';
const P12 = 'Canary-p12-Pass-77aq';
const WRONG = 'Canary-wrong-Pass-31zz';

let home: Home;
let sh: PtySession;
const ca = await FixtureCa.create();

before(async () => {
  home = makeHome(['domain = example.org']);
  sh = new PtySession(['init'], home.env);
  await sh.expect('New vault passphrase');
  await pause(30);
  sh.line(PASSPHRASE);
  await sh.expect('(again): ');
  await pause(30);
  sh.line(PASSPHRASE);
  await sh.expect('passtore> ');
});

after(() => {
  sh.kill();
  home.remove();
  ca.remove();
});

test('importcert asks each PKCS#12 passphrase at the no-echo prompt, offers to keep it, and stores the pairs', async () => {
  const dir = join(home.dir, 'delivered');
  mkdirSync(dir);
  for (const n of ['a', 'b', 'c']) {
    const key = await ca.genKey('ec-p256');
    writeFileSync(join(dir, `${n}.p12`), await pkcs12(ca, key, await ca.issue(key, `pty-${n}.example.org`), { pass: P12 }));
  }
  const out = await sh.command(`importcert ${dir}`, P12, 'y');
  assert.match(out, /Passphrase for the PKCS#12 file in a\.p12 \(empty to skip\): /);
  assert.match(out, /Use this passphrase for the 2 other files that need one \(asked again where it does not fit\)\? \[y\/N\] /);
  assert.ok(!/Passphrase for the PKCS#12 file in b\.p12/.test(out), 'b.p12 opened with the kept passphrase');
  assert.match(out, /3 files read; 3 pairs added; 3 new hosts/);
  assert.ok(!plain(sh.transcript).includes(P12), 'the passphrase is never shown');
});

test('a wrong PKCS#12 passphrase is refused clearly; Up after the prompt does not bring it back', async () => {
  const dir = join(home.dir, 'wrong');
  mkdirSync(dir);
  const key = await ca.genKey('ec-p256');
  writeFileSync(join(dir, 'w.p12'), await pkcs12(ca, key, await ca.issue(key, 'pty-w.example.org'), { pass: P12 }));
  const out = await sh.command(`importcert ${dir}`, WRONG);
  assert.match(out, /w\.p12 +\S* *wrong passphrase for the PKCS#12 file|w\.p12.*wrong passphrase for the PKCS#12 file/);
  const start = sh.mark;
  sh.write('\x1b[A');
  await pause(300);
  assert.ok(!plain(sh.transcript).slice(start).includes(WRONG), 'Up shows no passphrase');
  sh.write('\x15'); // Ctrl-U: clear the line
  await pause(100);
  assert.ok(!plain(sh.transcript).includes(WRONG), 'the wrong passphrase is never shown');
});

test('getkey HOST FILE.p12 asks the passphrase and stores the key', async () => {
  const key = await ca.genKey('rsa-2048');
  const file = join(home.dir, 'gk.p12');
  writeFileSync(file, await pkcs12(ca, key, await ca.issue(key, 'pty-gk.example.org'), { pass: P12, legacy: true }));
  assert.match(await sh.command('host add pty-gk'), /added host/);
  const out = await sh.command(`getkey pty-gk ${file}`, P12);
  assert.match(out, /Passphrase for the PKCS#12 file in .*gk\.p12 \(empty to skip\): /);
  assert.match(out, /imported a rsa-2048 key for pty-gk\.example\.org/);
  assert.ok(!plain(sh.transcript).includes(P12));
});

test('getcrt on a FIFO answers at once and the shell goes on', async () => {
  const fifo = join(home.dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const t0 = Date.now();
  const out = await sh.command(`getcrt ${fifo}`);
  assert.match(out, /is not a regular file/);
  assert.ok(Date.now() - t0 < 3000);
  assert.match(await sh.command('lcrt pty-*'), /^pty-a +CN=pty-a\.example\.org/m);
});
