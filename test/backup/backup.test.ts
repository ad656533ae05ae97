/**
 * Backups (SPEC section 9): two copies written and verified; one corrupted by a flipped
 * byte is refused by restore, naming the file, with nothing written; the other restores
 * into an empty SQLite file or MariaDB database, every secret matches the original, and
 * the audit trail verifies, and a certificate comes back with its issuing chain. Both back
 * ends.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, rmSync, mkdtempSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, mariadbSkip, type TestDatabase } from '../support/mariadb.js';
import { createTestVault, PASSPHRASE, ScriptedIo } from '../support/scripted.js';
import { restoreFromBackup } from '../../src/restore.js';
import { Session } from '../../src/session.js';
import { PasstoreError } from '../../src/errors.js';
import { FixtureCa } from '../x509/fixture-ca.js';

const PASSWORDS: Record<string, string> = { 'ui-01': 'Backup-Pw-1-x9', 'ui-02': 'Backup-Pw-2-k3', 'db-01': 'Backup-Pw-3-q7' };
const dbs: TestDatabase[] = [];
const ca = await FixtureCa.create();
after(async () => {
  for (const d of dbs) await d.drop().catch(() => undefined);
  ca.remove();
});

const backends = [
  { name: 'sqlite', skip: false as string | false, target: async (dir: string) => ({ db: `sqlite:${join(dir, 'restored.db')}`, dbPasswordFile: undefined as string | undefined }) },
  {
    name: 'mariadb',
    skip: await mariadbSkip(),
    target: async () => {
      const d = await createTestDatabase();
      dbs.push(d);
      return { db: d.url, dbPasswordFile: d.passwordFile as string | undefined };
    },
  },
];

for (const backend of backends) {
  describe(`backup and restore on ${backend.name}`, { skip: backend.skip }, () => {
    test('two copies; the corrupted one is refused naming the file; the good one restores every secret', async () => {
      const source = backend.name === 'sqlite' ? undefined : await backend.target('');
      const tv = await createTestVault(source ? { db: source.db, dbPasswordFile: source.dbPasswordFile } : {});
      const media = mkdtempSync(join(tmpdir(), 'passtore-media-'));
      try {
        for (const [h, pw] of Object.entries(PASSWORDS)) {
          assert.equal(await tv.run(`host add ${h}`), 0);
          assert.equal(await tv.run(`add ${h}`, pw, pw), 0);
        }
        assert.equal(await tv.run('update ui-01 --local', PASSWORDS['ui-01']!, 'Backup-Pw-1-new', 'Backup-Pw-1-new'), 0);
        assert.equal(await tv.run('crtreq db-01'), 0);
        // ui-02 gets a certificate from an intermediate CA, delivered with its chain.
        assert.equal(await tv.run('crtreq ui-02'), 0);
        const request = join(media, 'ui-02.req');
        writeFileSync(request, (await tv.session.store.openRequests('ui-02.example.org'))[0]!.pem);
        const leaf = await ca.signByIntermediate(request);
        const bundle = join(media, 'ui-02-bundle.pem');
        writeFileSync(bundle, readFileSync(leaf, 'utf8') + readFileSync((await ca.intermediate()).cert, 'utf8'));
        assert.equal(await tv.run(`getcrt ${bundle}`), 0, tv.io.text());
        const chainBefore = (await tv.session.store.currentCertificates('ui-02.example.org'))[0]!.chainPem;
        assert.match(chainBefore ?? '', /^-----BEGIN CERTIFICATE-----/, 'stored with its chain');
        const a = join(media, 'a');
        const b = join(media, 'b');
        mkdirSync(a);
        mkdirSync(b);
        // A medium that is not mounted (a missing directory) is refused, the other written.
        assert.equal(await tv.run(`backup ${join(media, 'not-mounted')} ${a}`), 1);
        assert.match(tv.io.text(), /not-mounted is not a directory \(is the medium mounted\?\)/);
        assert.ok(!existsSync(join(media, 'not-mounted')), 'nothing created for a missing medium');
        rmSync(a, { recursive: true });
        mkdirSync(a);
        assert.equal(await tv.run(`backup ${a} ${b}`), 0, tv.io.text());
        assert.match(tv.io.text(), /written, read back, verified[\s\S]*written, read back, verified/);
        await tv.close();

        // No secret in the copies in clear.
        for (const d of [a, b]) {
          const copy = join(d, readdirSync(d).find((n) => n.startsWith('passtore-'))!);
          const bytes = readFileSync(join(copy, 'snapshot.ptb')).toString('latin1');
          for (const pw of [...Object.values(PASSWORDS), 'Backup-Pw-1-new', PASSPHRASE]) {
            assert.ok(!bytes.includes(pw) && !bytes.includes(Buffer.from(pw).toString('base64')), 'a secret in clear in the backup');
          }
        }

        // Flip one byte of copy a.
        const copyA = join(a, readdirSync(a).find((n) => n.startsWith('passtore-'))!);
        const snap = join(copyA, 'snapshot.ptb');
        const bytes = readFileSync(snap);
        bytes[Math.floor(bytes.length / 2)] ^= 0x01;
        writeFileSync(snap, bytes);

        const target = await backend.target(tv.dir);
        const config = { ...tv.config, db: target.db, dbPasswordFile: target.dbPasswordFile };
        const io = new ScriptedIo();
        // The passphrase, then yes: this machine saw the vault after the copy was made
        // (the backup's own audit records), so restore asks first.
        io.answers.push(PASSPHRASE, 'y');
        await assert.rejects(restoreFromBackup(config, a, 'alice', io, io, { stateDir: tv.dir }), (e: unknown) => {
          assert.ok(e instanceof PasstoreError);
          assert.equal(e.code, 'integrity');
          assert.ok(e.message.includes(snap), e.message);
          return true;
        });
        if (backend.name === 'sqlite') assert.ok(!existsSync(join(tv.dir, 'restored.db')), 'nothing written for a damaged copy');

        // A wrong passphrase: refused before anything is written.
        const wrong = new ScriptedIo();
        wrong.answers.push('not the passphrase');
        await assert.rejects(restoreFromBackup(config, b, 'alice', wrong, wrong, { stateDir: tv.dir }), /wrong passphrase/);

        const result = await restoreFromBackup(config, b, 'alice', io, io, { stateDir: tv.dir });
        assert.ok(result.rows > 10);
        assert.match(io.text(), /the copy was made at .* UTC \(0 hours old\); its audit trail ends at record \d+/);
        assert.match(io.text(), /this copy is not the newest: this machine saw the vault at a later state/);
        assert.match(io.text(), /audit trail verified/);

        const check = new ScriptedIo();
        check.answers.push(PASSPHRASE);
        const session = await Session.open({ config, prompt: check, out: check, terminal: true, operator: 'alice', stateDir: tv.dir });
        try {
          await session.unlock(1);
          for (const h of Object.keys(PASSWORDS)) assert.equal(await session.execute(`get ${h}`), 0);
          assert.deepEqual(check.revealed, [
            'root@ui-01.example.org:ssh=Backup-Pw-1-new',
            `root@ui-02.example.org:ssh=${PASSWORDS['ui-02']}`,
            `root@db-01.example.org:ssh=${PASSWORDS['db-01']}`,
          ]);
          const history = await session.store.listHistory('ui-01.example.org');
          assert.equal(session.vault.openPassword(history[0]!).reveal(), PASSWORDS['ui-01'], 'history restored');
          assert.equal((await session.store.openRequests('*')).length, 1, 'the open request restored');
          assert.equal((await session.store.currentCertificates('ui-02.example.org'))[0]!.chainPem, chainBefore, 'the certificate restored with its issuing chain');
          assert.equal(await session.execute('audit --verify'), 0, check.text());
        } finally {
          await session.close();
        }

        // Restoring again into the same (now full) store is refused.
        const again = new ScriptedIo();
        again.answers.push(PASSPHRASE);
        await assert.rejects(restoreFromBackup(config, b, 'alice', again, again, { stateDir: tv.dir }), /already holds a vault/);
      } finally {
        rmSync(media, { recursive: true, force: true });
      }
    });
  });
}
