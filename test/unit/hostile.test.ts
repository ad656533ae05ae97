/**
 * The pure checks behind issue 17: the output layer's escaping (and only the program's own
 * colour surviving it), the host-name check shared by typed and stored names, the bounded
 * scrypt parameters, bounded reads of regular files only, renewal names, the cleartext rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config.js';
import { requireTlsUrl, cleartextAllowed } from '../../src/cleartext.js';
import { hostNameProblem, parseHost, printable, storedName, terminalSafe } from '../../src/names.js';
import { readRegularFile } from '../../src/safe-file.js';
import { parseKdf } from '../../src/vault/kdf.js';
import { namesOutside, renewalNames } from '../../src/x509/trust.js';

test('terminalSafe: C0, DEL, C1, bidi and zero-width characters become visible escapes', () => {
  assert.equal(terminalSafe('a\x1b[2Jb'), 'a\\x1b[2Jb');
  assert.equal(terminalSafe('\u009b2J'), '\\u009b2J');
  assert.equal(terminalSafe('x\u202ey\u2066z\u200bw\ufeff'), 'x\\u202ey\\u2066z\\u200bw\\ufeff');
  assert.equal(terminalSafe('\x07\x7f\r'), '\\x07\\x7f\\x0d');
  assert.equal(terminalSafe('one\ntwo\tthree'), 'one\\x0atwo\\x09three');
  assert.equal(terminalSafe('one\ntwo\tthree', { lines: true }), 'one\ntwo\tthree');
  assert.equal(terminalSafe('plain ünïcode ✓'), 'plain ünïcode ✓');
  assert.equal(printable('\u202e'), '\\u202e', 'printable uses the same set');
});

test('terminalSafe: only the own escape introducer becomes a real ESC', () => {
  const own = '\x1bNONCE';
  const painted = `${own}[31mred${own}[39m`;
  assert.equal(terminalSafe(`${painted} \x1b[31mforged`, { own }), '\x1b[31mred\x1b[39m \\x1b[31mforged');
  assert.equal(terminalSafe('\x1bNONC[2J', { own }), '\\x1bNONC[2J');
});

test('one host-name check for typed and stored names', () => {
  for (const bad of ['../../../../tmp/escaped/pwn', 'a..b', 'UPPER.example.org', 'x_y.example.org', 'single', `${'a'.repeat(64)}.org`]) {
    assert.ok(hostNameProblem(bad), bad);
    assert.throws(() => storedName('host', bad), (e: Error & { code?: string }) => e.code === 'integrity');
  }
  assert.equal(hostNameProblem('ce-01.example.org'), undefined);
  assert.equal(storedName('host', parseHost('ce-01', 'example.org')), 'ce-01.example.org');
  assert.throws(() => storedName('user', 'root;id'), /user/);
  assert.throws(() => storedName('service', 'ssh\n'), /service/);
  assert.equal(storedName('user', 'nicedb'), 'nicedb');
});

test('scrypt parameters of a key slot are bounded', () => {
  const slot = (N: number, r: number, p: number) => JSON.stringify({ alg: 'scrypt', N, r, p, salt: 'AAAA' });
  assert.equal(parseKdf(slot(2 ** 17, 8, 1)).alg, 'scrypt');
  assert.equal(parseKdf(slot(2 ** 20, 8, 1)).alg, 'scrypt');
  for (const [N, r, p] of [[2 ** 21, 8, 1], [2 ** 30, 8, 1], [2 ** 17, 8, 64], [2 ** 17, 64, 1], [2 ** 20, 8, 2], [3 * 2 ** 15, 8, 1]] as const) {
    assert.throws(() => parseKdf(slot(N, r, p)), (e: Error & { code?: string }) => e.code === 'integrity', `N=${N} r=${r} p=${p}`);
  }
  assert.throws(() => parseKdf(JSON.stringify({ alg: 'scrypt', N: 2 ** 17, r: '8', p: 1, salt: 'AAAA' })));
});

test('readRegularFile: devices refused, the limit holds whatever the size says', () => {
  assert.throws(() => readRegularFile('/dev/zero', 1024), /not a regular file/);
  assert.throws(() => readRegularFile('/proc/self', 1024), /not a regular file/);
  const dir = mkdtempSync(join(tmpdir(), 'passtore-read-'));
  try {
    writeFileSync(join(dir, 'big'), Buffer.alloc(2048, 0x41));
    assert.throws(() => readRegularFile(join(dir, 'big'), 1024), /larger than 1024 bytes/);
    assert.equal(readRegularFile(join(dir, 'big'), 4096).length, 2048);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('renewal names come from the vault\'s requests, never from the certificate', () => {
  const reqs = [
    { keyId: 1, sans: 'ce-01.example.org,alias.example.org', createdAt: '2026-01-01' },
    { keyId: 2, sans: 'ce-01.example.org', createdAt: '2026-06-01' },
  ];
  assert.deepEqual(renewalNames('ce-01.example.org', 1, reqs), ['alias.example.org']);
  assert.deepEqual(renewalNames('ce-01.example.org', 9, reqs), [], 'an imported key: the latest request');
  assert.deepEqual(renewalNames('ce-01.example.org', 9, []), []);
  assert.deepEqual(namesOutside(['ce-01.example.org', 'www.bank.example'], ['ce-01.example.org']), ['www.bank.example']);
});

test('cleartext URLs need [ca] insecure = yes; check lists the sections that allow it', () => {
  const config = defaultConfig();
  assert.throws(() => requireTlsUrl(config, 'http_url', 'http://ca.example.org/{fqdn}.pem'), /http:\/\/ sends credentials and certificates in clear/);
  assert.throws(() => requireTlsUrl(config, 'imap_url', 'imap://u@mail.example.org/INBOX'), /imap:\/\//);
  requireTlsUrl(config, 'http_url', 'https://ca.example.org/{fqdn}.pem');
  assert.deepEqual(cleartextAllowed(config), []);
  config.ca.insecure = 'yes';
  requireTlsUrl(config, 'http_url', 'http://ca.example.org/{fqdn}.pem');
  assert.deepEqual(cleartextAllowed(config), ['[ca] insecure = yes']);
});
