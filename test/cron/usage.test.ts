/**
 * passtore-cron's usage comes from the command descriptors (CRON_COMMANDS in
 * src/cron/jobs.ts): `--help` lists every command with its options and summary, in the
 * descriptors' order; the commands it accepts and the options each takes are the
 * descriptors' too. The real binary, no vault (usage errors come before the configuration).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CRON_COMMANDS, cronCommandUsage } from '../../src/cron/jobs.js';
import { runCron, show } from './helpers.js';

const dataHome = mkdtempSync(join(tmpdir(), 'passtore-cron-usage-'));
test.after(() => rmSync(dataHome, { recursive: true, force: true }));

test('--help lists every command of CRON_COMMANDS with its usage and summary, in their order', async () => {
  const r = await runCron(['--help'], { dataHome });
  assert.equal(r.code, 0, show(r));
  const commandLines = r.stdout.split('\n').filter((l) => l.startsWith('  '));
  assert.equal(commandLines.length, CRON_COMMANDS.length, show(r));
  CRON_COMMANDS.forEach((c, i) => {
    const [usage, summary] = commandLines[i]!.trim().split(/\s{2,}/);
    assert.equal(usage, cronCommandUsage(c));
    assert.equal(summary, c.summary);
  });
  assert.ok(commandLines.some((l) => l.trim().startsWith('renew [--dry-run]  ')), 'renew shows its --dry-run');
  assert.match(r.stdout, /^usage: passtore-cron \[--config FILE\] COMMAND$/m);
  assert.match(r.stdout, /See passtore-cron\(8\)\.$/m);
});

test('the commands and their options are the descriptors\': an option a command lacks is a usage error naming those that have it', async () => {
  const withDryRun = CRON_COMMANDS.filter((c) => c.options?.includes('dry-run')).map((c) => c.name);
  assert.deepEqual(withDryRun, ['renew']);
  for (const c of CRON_COMMANDS.filter((c) => !c.options?.includes('dry-run'))) {
    const r = await runCron([c.name, '--dry-run'], { dataHome });
    assert.equal(r.code, 2, show(r));
    assert.equal(r.stderr.split('\n')[0], `passtore-cron: ${c.name}: --dry-run is an option of renew only`, show(r));
    assert.match(r.stderr, /^commands:$/m, 'the usage follows');
  }
  const unknown = await runCron(['rnew'], { dataHome });
  assert.equal(unknown.code, 2, show(unknown));
  assert.equal(unknown.stderr.split('\n')[0], "passtore-cron: unknown command 'rnew' (did you mean renew?)", show(unknown));
});
