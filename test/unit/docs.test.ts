/**
 * The README is a user guide, and CONTRIBUTING.md holds the rest: the tests, fault suites
 * and benchmarks, and a map of the source tree that names every folder (a new folder
 * without a line there fails). Every relative link in both points at a file that exists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const contributing = readFileSync(join(root, 'CONTRIBUTING.md'), 'utf8');
const headings = (text: string) => [...text.matchAll(/^##+ (.+)$/gm)].map((m) => m[1]!);

test('the README is a user guide: what it is, install, first vault, daily use, automatic mode, backups, configuration', () => {
  const h = headings(readme);
  for (const want of [/^Install$/, /^First vault$/, /^Daily use$/, /^Automatic mode/, /^Backup/, /^Configuration$/]) {
    assert.ok(h.some((x) => want.test(x)), `README has a section ${want}: ${h.join(' | ')}`);
  }
  for (const gone of [/^Tests$/, /Fault/, /^Benchmarks$/]) assert.ok(!h.some((x) => gone.test(x)), `README has no ${gone} section`);
  assert.match(readme, /CONTRIBUTING\.md/);
});

test('CONTRIBUTING.md maps every folder of the source tree and holds the test material', () => {
  const folders = ['commands', 'sql', 'man', 'contrib/systemd', 'test', ...readdirSync(join(root, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `src/${e.name}`)];
  for (const f of folders) assert.ok(contributing.includes(`\`${f}/`), `the map names ${f}/`);
  for (const f of readdirSync(join(root, 'test'), { withFileTypes: true }).filter((e) => e.isDirectory())) {
    assert.ok(contributing.includes(`test/${f.name}`), `CONTRIBUTING.md says what test/${f.name} covers`);
  }
  for (const want of [/^Map of the source tree$/, /^Fault and fuzz suites$/, /^Benchmarks$/]) assert.ok(headings(contributing).some((x) => want.test(x)), `${want}`);
  for (const what of ['new shell command', 'new CA fetcher', 'new storage back end']) assert.ok(contributing.includes(what), what);
});

test('every relative link in README.md and CONTRIBUTING.md names an existing file', () => {
  for (const [name, text] of [['README.md', readme], ['CONTRIBUTING.md', contributing]] as const) {
    for (const [, target] of text.matchAll(/\]\(([^)#:]+)(?:#[^)]*)?\)/g)) assert.ok(existsSync(join(root, target!)), `${name} links ${target}`);
  }
});
