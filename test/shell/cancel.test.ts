/**
 * Ctrl-C cancels the command running in the real shell, through a real pseudo-terminal
 * (issue 12, item 11): an importcert of a directory that takes seconds to read, in reader
 * threads and in the shell's own thread, is cancelled within a moment with one line, the
 * prompt comes back, the session is still open and unlocked, and nothing was stored. A
 * cancel while importcert stands in the middle of its storing transaction (held there by
 * PASSTORE_HOLD_AT, half of the pairs already written) rolls all of it back. Ctrl-C at
 * the prompt itself keeps node:repl's behaviour (a hint; a second one ends the shell). Ctrl-C during
 * `source` cancels the line running and runs none after it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeHome, pause, plain, PtySession, type Home } from '../support/pty.js';
import { FixtureCa } from '../x509/fixture-ca.js';

const PASSPHRASE = 'Canary passphrase 6262';

let home: Home;
let sh: PtySession;
const ca = await FixtureCa.create();
const holdFile = () => join(home.dir, 'release');

/** `pairs` distinct EC pairs for cancel-N.example.org, as PEM text (certificate, key). */
async function makePairs(pairs: number): Promise<Array<{ cert: string; key: string }>> {
  const out = [];
  for (let i = 0; i < pairs; i++) {
    const key = await ca.genKey('ec-p256', ca.path(`cancel-${i}.key`));
    const cert = await ca.issue(key, `cancel-${i}.example.org`);
    out.push({ cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') });
  }
  return out;
}

/**
 * A directory of `files` files that each hold one pair's key and `copies` copies of its
 * certificate: real files, each to be parsed, so that reading all of them takes seconds.
 */
function bulkDir(name: string, pairs: Array<{ cert: string; key: string }>, files: number, copies: number): string {
  const dir = join(home.dir, name);
  mkdirSync(dir);
  for (let i = 0; i < files; i++) {
    const p = pairs[i % pairs.length]!;
    writeFileSync(join(dir, `f${String(i).padStart(5, '0')}.pem`), p.key + p.cert.repeat(copies));
  }
  return dir;
}

/** The vault holds no certificate and no host: lcrt and list say so, without asking the passphrase. */
async function assertNothingStored(): Promise<void> {
  const lcrt = await sh.command('lcrt');
  assert.ok(!/cancel-\d/.test(lcrt), `no certificate stored:\n${lcrt}`);
  const list = await sh.command('list');
  assert.ok(!/cancel-\d/.test(list), `no host added:\n${list}`);
  assert.ok(!/Passphrase for/.test(lcrt + list), 'the session stayed unlocked');
}

before(async () => {
  home = makeHome(['domain = example.org']);
  sh = new PtySession([], { ...home.env, PASSTORE_HOLD_AT: 'importcert-in-transaction', PASSTORE_HOLD_FILE: holdFile() });
  await sh.createVault(PASSPHRASE);
});

after(() => {
  sh.kill();
  home.remove();
  ca.remove();
});

for (const [label, files, copies] of [
  ['in reader threads (2,400 files)', 2400, 24],
  ["in the shell's own thread (300 files)", 300, 160],
] as const) {
  test(`Ctrl-C cancels an importcert reading a large directory ${label}: one line, the prompt back, nothing stored`, async () => {
    const dir = bulkDir(`bulk-${files}`, await makePairs(3), files, copies);
    const start = sh.mark;
    sh.line(`importcert ${dir}`);
    // Reading has begun (the first progress line with threads; a moment without).
    if (files >= 500) await sh.expect(/reading .*: 500 files/, { from: start, timeoutMs: 60_000 });
    else await pause(700);
    const sent = Date.now();
    sh.write('\x03');
    const end = await sh.expect(/importcert: cancelled; nothing stored\n/, { from: start, timeoutMs: 5_000 });
    const took = Date.now() - sent;
    assert.ok(took < 3_000, `the cancel line came ${took} ms after Ctrl-C`);
    await sh.expect(/^passtore> $/, { from: end });
    const out = plain(sh.transcript).slice(start);
    assert.ok(!/files read;/.test(out), `the import did not run to its end:\n${out.slice(-600)}`);
    assert.ok(!/error:|To exit, press/.test(out), `one line, no error, no REPL hint:\n${out.slice(-600)}`);
    await assertNothingStored();
    assert.equal(sh.exitCode, undefined, 'the shell is still running');
  });
}

test('Ctrl-C while importcert stands in its storing transaction, half of the pairs written: all rolled back', async () => {
  const pairs = await makePairs(6);
  const dir = join(home.dir, 'held');
  mkdirSync(dir);
  pairs.forEach((p, i) => writeFileSync(join(dir, `p${i}.pem`), p.cert + p.key));
  const start = sh.mark;
  sh.line(`importcert ${dir}`);
  const deadline = Date.now() + 30_000;
  while (!existsSync(`${holdFile()}.held`) && Date.now() < deadline) await pause(50);
  assert.ok(existsSync(`${holdFile()}.held`), 'importcert reached the middle of its transaction');
  sh.write('\x03');
  await pause(300);
  writeFileSync(holdFile(), 'go');
  const end = await sh.expect(/importcert: cancelled; nothing stored\n/, { from: start, timeoutMs: 10_000 });
  await sh.expect(/^passtore> $/, { from: end });
  await assertNothingStored();
  // Without Ctrl-C the same directory is imported whole (the hold file now lets it pass).
  const out = await sh.command(`importcert ${dir}`);
  assert.match(out, /6 files read; 6 pairs added/);
  assert.match(await sh.command('lcrt'), /cancel-5\.example\.org/);
});

test('Ctrl-C while source runs an importcert: that line is cancelled and none after it runs', async () => {
  const script = join(home.dir, 'script.txt');
  writeFileSync(script, `list\nimportcert ${join(home.dir, 'bulk-300')}\nhost add after-cancel\n`);
  const start = sh.mark;
  sh.line(`source ${script}`);
  await sh.expect(/passtore> importcert .*bulk-300\n/, { from: start, timeoutMs: 20_000 });
  await pause(700);
  sh.write('\x03');
  const end = await sh.expect(/importcert: cancelled; nothing stored\n/, { from: start, timeoutMs: 5_000 });
  const last = await sh.expect(/source: cancelled at .*script\.txt:2; the 1 command before it ran, the rest did not\n/, { from: end, timeoutMs: 5_000 });
  await sh.expect(/^passtore> $/, { from: last });
  assert.ok(!/after-cancel/.test(await sh.command('list')), 'the line after the cancelled one did not run');
});

test('Ctrl-C at the prompt keeps its behaviour: a hint, the shell still there; the next command works', async () => {
  const start = sh.mark;
  sh.write('\x03');
  await sh.expect('(To exit, press Ctrl+C again or Ctrl+D or type .exit)', { from: start });
  // Ctrl-C's own prompt, then the empty line's, so the next command's output is not taken from before them.
  await sh.expect(/\npasstore> $/, { from: start });
  const empty = sh.mark;
  sh.line('');
  await sh.expect(/\npasstore> $/, { from: empty });
  assert.match(await sh.command('lcrt'), /cancel-5\.example\.org/);
  assert.equal(sh.exitCode, undefined);
});
