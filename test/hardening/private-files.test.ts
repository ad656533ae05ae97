/**
 * Files that hold secrets are opened without following links and checked on the open
 * descriptor (issue 13, item 4): the key file, the database password file, the EAB key
 * file and the SQLite vault file. A link planted where one is expected, a file of another
 * owner, and a file swapped between the check and the read are refused with one line
 * naming the file.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCronVault, runCron, writeConfig, type CronVault } from '../cron/helpers.js';
import { readPrivateFileBytes } from '../../src/fetchers/fetcher.js';
import { readPrivate } from '../../src/private-file.js';
import { readDbPassword } from '../../src/storage/mysql-driver.js';
import { openStore } from '../../src/storage/open.js';

const NOBODY = 65534;

describe('the key file (passtore-cron)', () => {
  let cv: CronVault;
  before(async () => {
    cv = await createCronVault({ domain: 'example.org', hosts: [] });
    writeConfig(cv);
  });
  after(() => rmSync(cv.dir, { recursive: true, force: true }));

  test('a link planted at the key file path is refused, naming the file', async () => {
    const real = join(cv.dir, 'real.key');
    renameSync(cv.keyfile, real);
    symlinkSync(real, cv.keyfile);
    try {
      const r = await runCron(['--config', cv.configFile, 'run'], { dataHome: cv.dataHome });
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), [`passtore-cron: key file ${cv.keyfile} is a symbolic link; refusing it (a secret file is never read through a link)`]);
    } finally {
      rmSync(cv.keyfile);
      renameSync(real, cv.keyfile);
    }
    assert.equal((await runCron(['--config', cv.configFile, 'run'], { dataHome: cv.dataHome })).code, 0, 'the real file still opens');
  });

  test("a key file of another owner is refused, even mode 0400", async () => {
    chownSync(cv.keyfile, NOBODY, NOBODY);
    try {
      const r = await runCron(['--config', cv.configFile, 'run'], { dataHome: cv.dataHome });
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^passtore-cron: key file ${cv.keyfile} is owned by uid ${NOBODY}, not by uid ${process.getuid!()} running passtore; refusing it\\n$`));
    } finally {
      chownSync(cv.keyfile, process.getuid!(), process.getgid!());
    }
  });
});

describe('the other secret files', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'passtore-private-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('db_password_file and acme_eab_hmac_file: a link is refused, a private file is read', () => {
    const real = join(dir, 'secret');
    writeFileSync(real, 'c2VjcmV0LXNlY3JldC1zZWNyZXQ\n', { mode: 0o600 });
    const link = join(dir, 'link');
    symlinkSync(real, link);
    assert.throws(() => readDbPassword(link), { message: `db_password_file ${link} is a symbolic link; refusing it (a secret file is never read through a link)` });
    assert.throws(() => readPrivateFileBytes(link, 'acme_eab_hmac_file'), { message: `[ca] acme_eab_hmac_file ${link} is a symbolic link; refusing it (a secret file is never read through a link)` });
    assert.equal(readDbPassword(real), 'c2VjcmV0LXNlY3JldC1zZWNyZXQ');
    chmodSync(real, 0o640);
    assert.throws(() => readDbPassword(real), /db_password_file .* is readable by group or others \(mode 640\); chmod 600 it/);
    chmodSync(real, 0o700);
    assert.throws(() => readPrivateFileBytes(real, 'acme_eab_hmac_file'), /has mode 700, not 600 or 400/);
  });

  test('the SQLite vault file: a link is refused, and so is one of another owner', async () => {
    const realDb = join(dir, 'real.db');
    const store = await openStore(`sqlite:${realDb}`);
    await store.close();
    const linkDb = join(dir, 'vault.db');
    symlinkSync(realDb, linkDb);
    await assert.rejects(openStore(`sqlite:${linkDb}`), { message: `vault file ${linkDb} is a symbolic link; refusing it (a secret file is never read through a link)` });
    chownSync(realDb, NOBODY, NOBODY);
    await assert.rejects(openStore(`sqlite:${realDb}`), /vault file .*real\.db is owned by uid 65534/);
  });

  test('a file swapped between the check and the read is never the one read', async () => {
    const path = join(dir, 'swapped');
    const good = join(dir, 'good');
    const bad = join(dir, 'bad');
    writeFileSync(good, 'GOOD', { mode: 0o600 });
    writeFileSync(bad, 'BAD!', { mode: 0o644 });
    copyFileSync(good, path);
    chmodSync(path, 0o600);
    // A child swaps the two files in at `path` as fast as it can (link, then rename over).
    const swapper = spawn(process.execPath, ['-e', `
      const fs = require('node:fs');
      const [path, good, bad] = process.argv.slice(1);
      for (let i = 0; ; i++) {
        const tmp = path + '.tmp';
        try { fs.rmSync(tmp, { force: true }); fs.linkSync(i % 2 ? bad : good, tmp); fs.renameSync(tmp, path); } catch {}
      }`, path, good, bad], { stdio: 'ignore' });
    try {
      let read = 0;
      let refused = 0;
      let raced = 0;
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        try {
          const b = readPrivate(path, { what: 'key file', code: 'locked', chmod: '400' });
          assert.equal(b.toString(), 'GOOD', 'only the checked file is read');
          read++;
        } catch (e) {
          if (!/readable by group or others|cannot read it/.test((e as Error).message)) throw e;
          refused++;
        }
        // The check by path then read by path that this replaced: count how often it is fooled.
        try {
          if ((statSync(path).mode & 0o077) === 0 && readFileSync(path, 'utf8') === 'BAD!') raced++;
        } catch {
          /* the file was between names */
        }
      }
      console.log(`# ${read} reads of the private file, ${refused} refusals of the swapped one; a check by path would have read the other file ${raced} times`);
      assert.ok(read > 0 && refused > 0, 'both files were met');
    } finally {
      swapper.kill('SIGKILL');
    }
  });
});
