/**
 * Checks before secrets: each command that asks for a secret is run against each
 * precondition it can fail, and must refuse with one line before any prompt (the
 * session's prompter records every prompt). A control run of the same command with the
 * precondition met shows the prompts do get recorded, so the test can fail.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestVault, removeTestDir, type TestVault } from '../support/scripted.js';

// A domain that never resolves: a host without a stored address cannot be reached.
const DOMAIN = 'site.invalid';
const PW = 'Stored-Pw-for-tests-1';

describe('a command that asks for a secret checks everything it can first', () => {
  let tv: TestVault;

  before(async () => {
    tv = await createTestVault({ domain: DOMAIN });
    const ok = async (line: string, ...answers: string[]) => assert.equal(await tv.run(line, ...answers), 0, `${line}: ${tv.io.text()}`);
    await ok('host add unpinned --address 192.0.2.10');
    await ok('host add noaddr');
    await ok('host add ready --address 192.0.2.12');
    for (const h of ['unpinned', 'noaddr', 'ready']) await ok(`add ${h}`, PW, PW);
    await ok('add app@ready:web', PW, PW);
    // Pin a key on noaddr and ready as host trust would (the key itself is not used here).
    for (const h of ['noaddr', 'ready']) {
      const row = (await tv.session.store.getHost(`${h}.${DOMAIN}`))!;
      await tv.session.store.setHostKey(row.id, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForThePreconditionTestOnly00000000');
    }
  });

  after(async () => {
    await tv.close();
    removeTestDir(tv);
  });

  /** Runs `line` with no answers queued: it must fail with one line and ask nothing. */
  async function refusedBeforeAnyPrompt(line: string, why: RegExp): Promise<void> {
    tv.io.prompts.length = 0;
    tv.io.lines.length = 0;
    const status = await tv.run(line);
    assert.notEqual(status, 0, `${line}: refused`);
    assert.deepEqual(tv.io.prompts, [], `${line}: no prompt before the refusal`);
    assert.equal(tv.io.lines.length, 1, `${line}: one line: ${tv.io.text()}`);
    assert.match(tv.io.lines[0]!, why, line);
  }

  const cases: Array<[string, string, RegExp]> = [
    ['update: the host does not exist', 'update nosuch', /unknown host|no entry|not found|nosuch/],
    ['update: no entry for that user', 'update nobody@ready', /no|not found/],
    ['update: the host key is not pinned', 'update unpinned', /unpinned\.site\.invalid has no pinned SSH host key: run host trust .* or update --local/],
    ['update: no address and the name does not resolve', 'update noaddr', /noaddr\.site\.invalid has no address stored .* host address noaddr\.site\.invalid IP, or update --local/],
    ['update: a pattern of hosts none of which can be reached', 'update *n*', /none of the 2 hosts can be reached/],
    ['update: --remote and --local together', 'update ready --remote --local', /--remote and --local exclude each other/],
    ['update: --remote on an entry that is not a system account', 'update app@ready:web --remote', /--remote changes system accounts \(:ssh entries\) only/],
    ['update: a bad --jobs', 'update ready --jobs 0', /--jobs 0: expected a number from 1 to 64/],
    ['update: an unknown option', 'update ready --lcoal', /unknown option --lcoal \(did you mean --local\?\)/],
    ['add: the host does not exist', 'add nosuch', /unknown host|nosuch/],
    ['add: the entry already has a password', 'add ready', /already has a password; use update/],
    ['operator add: the operator exists', 'operator add alice', /already has a key slot/],
    ['operator add: a bad name', 'operator add Bad!Name', /operator name/],
    ['putreq: the host does not exist', 'putreq nosuch alice@ws-01.site.invalid:requests', /unknown host|nosuch/],
    ['putreq: the host has no open request', 'putreq ready alice@ws-01.site.invalid:requests', /has no open request; make one with crtreq/],
    ['putreq: a bad workstation spec', 'putreq ready alice@bad!host:requests', /bad|host/],
    ['getkey: the host does not exist', 'getkey nosuch alice@ws-01.site.invalid:/tmp/key.pem', /unknown host|nosuch/],
    ['getcrt: a remote file without a path', 'getcrt alice@ws-01.site.invalid:', /path|file/],
  ];
  for (const [what, line, why] of cases) {
    test(`${what}: refused before any prompt (${line})`, () => refusedBeforeAnyPrompt(line, why));
  }

  test('control: with the preconditions met, the same commands do prompt', async () => {
    tv.io.prompts.length = 0;
    assert.equal(await tv.run('update unpinned --local', PW, 'New-Pw-for-tests-22', 'New-Pw-for-tests-22'), 0, tv.io.text());
    assert.ok(tv.io.prompts.length === 3, JSON.stringify(tv.io.prompts));
    tv.io.prompts.length = 0;
    assert.equal(await tv.run('operator add bob', 'Bob passphrase of 2026', 'Bob passphrase of 2026'), 0, tv.io.text());
    assert.equal(tv.io.prompts.length, 2);
  });
});
