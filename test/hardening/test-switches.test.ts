/**
 * The test hooks of the production programs (issue 13, item 5): PASSTORE_CRASH_AT and
 * PASSTORE_SCRYPT_LOG_N do nothing unless PASSTORE_TEST_SWITCHES=for-tests-only is set
 * too; a slot below the default cost is refused otherwise; passtore-cron check warns of
 * a vault that has one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createCronVault, runCron, writeConfig } from '../cron/helpers.js';
import { checkNewSlotCost, defaultScrypt } from '../../src/vault/kdf.js';

const FAULTS = fileURLToPath(new URL('../../src/faults.js', import.meta.url));

function withSwitch<T>(value: string | undefined, fn: () => T): T {
  const before = process.env.PASSTORE_TEST_SWITCHES;
  if (value === undefined) delete process.env.PASSTORE_TEST_SWITCHES;
  else process.env.PASSTORE_TEST_SWITCHES = value;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env.PASSTORE_TEST_SWITCHES;
    else process.env.PASSTORE_TEST_SWITCHES = before;
  }
}

test('PASSTORE_CRASH_AT kills only with the test switch set', () => {
  const script = `import { step } from ${JSON.stringify(FAULTS)}; step('here'); process.stdout.write('passed the step');`;
  const run = (extra: Record<string, string>) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env.PATH, PASSTORE_CRASH_AT: 'here', ...extra }, encoding: 'utf8' });
  const plainRun = run({});
  assert.equal(plainRun.status, 0, plainRun.stderr);
  assert.equal(plainRun.stdout, 'passed the step');
  assert.equal(run({ PASSTORE_TEST_SWITCHES: 'yes' }).status, 0, 'any other value is not the switch');
  const killed = run({ PASSTORE_TEST_SWITCHES: 'for-tests-only' });
  assert.equal(killed.signal, 'SIGKILL');
});

test('PASSTORE_SCRYPT_LOG_N lowers the cost only with the test switch; a cheap slot is refused without it', () => {
  const old = process.env.PASSTORE_SCRYPT_LOG_N;
  process.env.PASSTORE_SCRYPT_LOG_N = '14';
  try {
    assert.equal(withSwitch(undefined, () => defaultScrypt().N), 2 ** 17);
    assert.equal(withSwitch('for-tests-only', () => defaultScrypt().N), 2 ** 14);
    const cheap = { alg: 'scrypt' as const, N: 2 ** 14, r: 8, p: 1, salt: 'AAAA' };
    assert.throws(() => withSwitch(undefined, () => checkNewSlotCost(cheap)), /refusing a key slot with scrypt N = 16384, below the default 2\^17/);
    withSwitch('for-tests-only', () => checkNewSlotCost(cheap));
    withSwitch(undefined, () => checkNewSlotCost({ ...cheap, N: 2 ** 17 }));
  } finally {
    if (old === undefined) delete process.env.PASSTORE_SCRYPT_LOG_N;
    else process.env.PASSTORE_SCRYPT_LOG_N = old;
  }
});

test('passtore-cron check warns of a vault with a slot below the default cost', async () => {
  const cv = await createCronVault({ domain: 'example.org', hosts: [] });
  try {
    writeConfig(cv);
    const quiet = await runCron(['--config', cv.configFile, 'check'], { dataHome: cv.dataHome });
    assert.equal(quiet.code, 0, quiet.stdout + quiet.stderr);
    const r = await runCron(['--config', cv.configFile, 'check'], { dataHome: cv.dataHome, env: { PASSTORE_TEST_SWITCHES: '' } });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^PASSTORE WARNING - key slot below the default scrypt cost \(a test setting\): passphrase alice \| /);
  } finally {
    rmSync(cv.dir, { recursive: true, force: true });
  }
});
