/**
 * One error formatter: `errorMessage` gives the line without a prefix, and only the
 * display adds `error: ` (`formatError`); no caller strips a prefix another added.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage, formatError, PasstoreError } from '../../src/errors.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

test('errorMessage has no prefix; formatError is the display form with one', () => {
  const e = new PasstoreError('not-found', 'no host ui-09.example.org');
  assert.equal(errorMessage(e), 'no host ui-09.example.org');
  assert.equal(formatError(e), 'error: no host ui-09.example.org');
  assert.match(errorMessage(new TypeError('x')), /^internal TypeError; nothing was changed/);
  assert.doesNotMatch(errorMessage(new TypeError('secret detail')), /secret detail/);
});

test('no code strips the error: prefix again', () => {
  for (const f of [...sources(join(root, 'src')), ...sources(join(root, 'commands'))]) {
    assert.doesNotMatch(readFileSync(f, 'utf8'), /replace\(\/\^error: \//, f);
  }
});
