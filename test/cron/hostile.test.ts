/**
 * A hostile writer of the CA drop folder, against the real passtore-cron: links planted as
 * `refused` and `done` (standing for /etc/cron.daily), a link and a FIFO posing as
 * certificates, an executable that is refused, a file name carrying terminal escapes.
 * Nothing is followed, nothing appears outside the drop folder, the genuine certificate is
 * stored, the copies are kept in passtore's own ca-drop/ (0700), and every escape arrives
 * visible in the report.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FixtureCa, openssl, readText } from '../x509/fixture-ca.js';
import { certificates, createCronVault, failures, outbox, requests, runCron, show, writeConfig, type CronVault } from './helpers.js';
import { startSmtp, type ReceivedMail } from './servers.js';

const DOMAIN = 'site.test';
const ca = await FixtureCa.create();
const vaults: CronVault[] = [];

after(() => {
  for (const v of vaults) rmSync(v.dir, { recursive: true, force: true });
  ca.remove();
});

describe('a hostile drop folder', () => {
  let v: CronVault;
  let evilName: string;

  test('links, a FIFO and escapes in the drop folder: nothing followed, nothing written outside, the genuine certificate stored', async () => {
    v = await createCronVault({ domain: DOMAIN, hosts: [{ name: 'a' }] });
    vaults.push(v);
    const drop = join(v.dir, 'drop');
    mkdirSync(drop, { mode: 0o777 });
    const cronDaily = join(v.dir, 'cron.daily'); // stands for /etc/cron.daily
    mkdirSync(cronDaily);
    const secret = join(v.dir, 'shadow');
    writeFileSync(secret, 'root:$6$not-for-the-drop-folder\n', { mode: 0o600 });
    writeConfig(v, { ca: { dir: drop, trust: ca.caCert } });

    const reqDir = join(v.dir, 'requests');
    mkdirSync(reqDir);
    await v.withShell(async (tv) => {
      assert.equal(await tv.run(`crtreq a --out ${reqDir}`), 0, tv.io.text());
    });
    const good = await ca.sign(join(reqDir, `a.${DOMAIN}.req`));

    symlinkSync(cronDaily, join(drop, 'refused'));
    symlinkSync(cronDaily, join(drop, 'done'));
    symlinkSync(secret, join(drop, '0-link.pem'));
    execFileSync('mkfifo', [join(drop, '0-fifo.pem')]);
    const stranger = await ca.issue(await ca.genKey('ec-p256'), `a.${DOMAIN}`);
    evilName = `1-run-me\x1b]0;owned\x07\x1b[2J\u009b2J\u202egnp.pem`;
    writeFileSync(join(drop, evilName), `#!/bin/sh\n${readText(stranger)}`, { mode: 0o755 });
    writeFileSync(join(drop, '2-genuine.pem'), readText(good));

    const r = await runCron(['--config', v.configFile, 'fetch'], { dataHome: v.dataHome });
    const text = `${r.stdout}${r.stderr}`;
    assert.equal(r.code, 1, show(r));

    // Nothing went through the links.
    assert.deepEqual(readdirSync(cronDaily), [], 'nothing appeared in the link target');
    assert.equal(readFileSync(secret, 'utf8'), 'root:$6$not-for-the-drop-folder\n');
    assert.equal(statSync(secret).mode & 0o777, 0o600);
    for (const l of ['refused', 'done', '0-link.pem']) assert.ok(lstatSync(join(drop, l)).isSymbolicLink(), `${l} is left as it is`);
    assert.ok(!text.includes('not-for-the-drop-folder'));
    const failed = failures(r);
    assert.ok(failed.some((l) => l.includes('0-link.pem: not a regular file (a symbolic link); skipped, nothing followed')), show(r));
    assert.ok(failed.some((l) => l.includes('0-fifo.pem: not a regular file (a device, FIFO or socket)')), show(r));

    // The genuine certificate is stored; the forged one refused, its name shown escaped.
    assert.ok(r.lines.some((l) => l.startsWith(`stored the certificate for a.${DOMAIN} from ${join(drop, '2-genuine.pem')}`)), show(r));
    assert.deepEqual(certificates(v).map((c) => `${c.fqdn} ${c.state}`), [`a.${DOMAIN} current`]);
    assert.ok(failed.some((l) => l.includes('1-run-me\\x1b]0;owned\\x07\\x1b[2J\\u009b2J\\u202egnp.pem')), show(r));
    for (const raw of ['\x1b', '\x07', '\u009b', '\u202e']) assert.ok(!r.stdout.includes(raw), `no raw ${JSON.stringify(raw)} in the report`);

    // The files left the drop folder; passtore keeps its copies in its own directory.
    assert.ok(!existsSync(join(drop, '2-genuine.pem')) && !existsSync(join(drop, evilName)));
    const archive = join(v.dataHome, 'passtore', 'ca-drop');
    for (const [sub, name] of [['done', '2-genuine.pem'], ['refused', evilName]] as const) {
      assert.equal(statSync(join(archive, sub)).mode & 0o777, 0o700);
      const st = lstatSync(join(archive, sub, name));
      assert.ok(st.isFile());
      assert.equal(st.mode & 0o777, 0o600, 'the copy is not executable');
    }
  });

  test('10: mail and fetchers require TLS unless insecure = yes; check warns; the warning mail shows escapes visible', async () => {
    const mails: ReceivedMail[] = [];
    const smtp = await startSmtp({ host: '127.0.0.1', onMail: (m) => mails.push(m) });
    try {
      // The test receiver offers no STARTTLS: nothing is sent in clear, the mail stays queued.
      const queued = outbox(v).filter((m) => m.state !== 'sent').length;
      assert.ok(queued > 0, 'the refusal above queued a warning mail');
      writeConfig(v, { smtp: { host: '127.0.0.1', port: smtp.port, from: 'passtore@vault.site.test' } });
      const refused = await runCron(['--config', v.configFile, 'send'], { dataHome: v.dataHome });
      assert.equal(refused.code, 1, show(refused));
      assert.ok(failures(refused).some((l) => /mail .* not sent \(.*TLS/i.test(l)), show(refused));
      assert.equal(mails.length, 0, 'no mail went out in clear');
      assert.equal(outbox(v).filter((m) => m.state !== 'sent').length, queued, 'the mail stays queued');

      // 8: a password file someone else owns is refused, naming it and its mode; nothing is sent.
      const pwFile = join(v.dir, 'smtp-password');
      writeFileSync(pwFile, 'not-sent\n', { mode: 0o600 });
      chownSync(pwFile, 65534, 65534);
      writeConfig(v, { smtp: { host: '127.0.0.1', port: smtp.port, from: 'passtore@vault.site.test', insecure: 'yes', user: 'passtore', password_file: pwFile } });
      const foreign = await runCron(['--config', v.configFile, 'send'], { dataHome: v.dataHome });
      assert.notEqual(foreign.code, 0, show(foreign));
      assert.match(`${foreign.stdout}${foreign.stderr}`, new RegExp(`\\[smtp\\] password_file ${pwFile} \\(mode 0600\\) is owned by uid 65534, neither root nor the user running passtore; refused`), show(foreign));
      assert.equal(mails.length, 0);

      writeConfig(v, { smtp: { host: '127.0.0.1', port: smtp.port, from: 'passtore@vault.site.test', insecure: 'yes' } });
      const sent = await runCron(['--config', v.configFile, 'send'], { dataHome: v.dataHome });
      assert.ok(sent.lines.some((l) => /^mail: \d+ sent$/.test(l)), show(sent));
      const warning = mails.find((m) => m.text.includes('1-run-me'));
      assert.ok(warning, mails.map((m) => m.subject).join('; '));
      assert.ok(warning.text.includes('1-run-me\\x1b]0;owned\\x07\\x1b[2J\\u009b2J\\u202egnp.pem'), warning.text);
      for (const raw of ['\x1b', '\x07', '\u009b', '\u202e']) assert.ok(!warning.text.includes(raw), `no raw ${JSON.stringify(raw)} in the mail`);

      const check = await runCron(['--config', v.configFile, 'check'], { dataHome: v.dataHome });
      assert.equal(check.code, 1, show(check));
      assert.match(check.lines[0]!, /^PASSTORE WARNING - .*cleartext allowed \(\[smtp\] insecure = yes\)/);

      // An open request, so fetch uses its fetchers.
      await v.withShell(async (tv) => {
        assert.equal(await tv.run('crtreq a'), 0, tv.io.text());
      });
      for (const url of ['http://127.0.0.1:1/certs/{fqdn}.pem', 'imap://certs@127.0.0.1:1/INBOX']) {
        const key = url.startsWith('http') ? 'http_url' : 'imap_url';
        writeConfig(v, { ca: { [key]: url, imap_password_file: v.keyfile } });
        const r = await runCron(['--config', v.configFile, 'fetch'], { dataHome: v.dataHome });
        assert.notEqual(r.code, 0, show(r));
        assert.match(`${r.stdout}${r.stderr}`, new RegExp(`\\[ca\\] ${key}: ${url.split(':')[0]}:// sends credentials and certificates in clear`), show(r));
      }
    } finally {
      await smtp.close();
    }
  });

  test('4: a forged certificate (a CA of its own, extra names) is refused naming its issuer; the genuine one is then stored; a renewal asks only for the vault\'s names', async () => {
    const w = await createCronVault({ domain: DOMAIN, hosts: [{ name: 'b' }] });
    vaults.push(w);
    const drop = join(w.dir, 'drop');
    mkdirSync(drop);
    writeConfig(w, { ca: { dir: drop, trust: ca.caCert } });
    const reqDir = join(w.dir, 'requests');
    mkdirSync(reqDir);
    await w.withShell(async (tv) => {
      assert.equal(await tv.run(`crtreq b --out ${reqDir}`), 0, tv.io.text());
    });
    const req = join(reqDir, `b.${DOMAIN}.req`);

    // Anyone who saw the mailed request can have it signed by a CA of their own.
    const evil = join(w.dir, 'evil-ca');
    mkdirSync(evil);
    await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(evil, 'ca.key')]);
    await openssl(['req', '-x509', '-new', '-key', join(evil, 'ca.key'), '-subj', '/CN=Totally Real CA', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-out', join(evil, 'ca.crt')]);
    writeFileSync(join(evil, 'ext'), `[ext]\nsubjectAltName = DNS:b.${DOMAIN}, DNS:www.bank.example\n`);
    await openssl(['x509', '-req', '-in', req, '-CA', join(evil, 'ca.crt'), '-CAkey', join(evil, 'ca.key'), '-set_serial', '0x4711', '-days', '30', '-extfile', join(evil, 'ext'), '-extensions', 'ext', '-out', join(evil, 'forged.crt')]);
    writeFileSync(join(drop, '1-forged.pem'), `${readText(join(evil, 'forged.crt'))}${readText(join(evil, 'ca.crt'))}`);
    // The genuine CA, but with a name the request did not ask for.
    writeFileSync(join(drop, '2-extra-name.pem'), readText(await ca.sign(req, { sans: [`b.${DOMAIN}`, 'www.bank.example'] })));

    const r1 = await runCron(['--config', w.configFile, 'fetch'], { dataHome: w.dataHome });
    assert.equal(r1.code, 1, show(r1));
    const f = failures(r1);
    assert.ok(f.some((l) => /1-forged\.pem: issued by (\/)?CN=Totally Real CA, which is not a trusted CA \(\[ca\] trust\)/.test(l)), show(r1));
    assert.ok(f.some((l) => /2-extra-name\.pem names www\.bank\.example, which the request for b\.site\.test did not ask for/.test(l)), show(r1));
    assert.deepEqual(certificates(w), [], 'nothing was stored');

    // The genuine certificate still finds its request open, and is stored.
    const genuine = await ca.sign(req);
    writeFileSync(join(drop, '3-genuine.pem'), readText(genuine));
    const r2 = await runCron(['--config', w.configFile, 'fetch'], { dataHome: w.dataHome });
    assert.ok(r2.lines.some((l) => l.startsWith(`stored the certificate for b.${DOMAIN} from ${join(drop, '3-genuine.pem')}`)), show(r2));
    assert.deepEqual(certificates(w).map((c) => `${c.fqdn} ${c.state}`), [`b.${DOMAIN} current`]);

    // Without [ca] trust, no fetched certificate is believed.
    writeConfig(w, { ca: { dir: drop } });
    await w.withShell(async (tv) => {
      assert.equal(await tv.run(`crtreq b --out ${reqDir}`), 0, tv.io.text());
    });
    writeFileSync(join(drop, '4-untrusted.pem'), readText(await ca.sign(req)));
    const r3 = await runCron(['--config', w.configFile, 'fetch'], { dataHome: w.dataHome });
    assert.ok(failures(r3).some((l) => /no \[ca\] trust is configured/.test(l)), show(r3));

    // A current certificate that carries a name the vault never asked for (stored at the
    // terminal with getcrt): its renewal asks only for the host's own names.
    await w.withShell(async (tv) => {
      assert.equal(await tv.run(`getcrt ${await ca.sign(req, { sans: [`b.${DOMAIN}`, 'www.bank.example'] })}`), 0, tv.io.text());
    });
    const renew = await runCron(['--config', w.configFile, 'renew'], { dataHome: w.dataHome, shiftDays: 350 });
    assert.ok(renew.lines.some((l) => l.startsWith(`renew b.${DOMAIN}: new`)), show(renew));
    const open = requests(w).filter((q) => q.state === 'created');
    assert.equal(open.length, 1);
    writeFileSync(join(w.dir, 'renewal.req'), open[0]!.pem);
    const dump = await openssl(['req', '-in', join(w.dir, 'renewal.req'), '-noout', '-text']);
    assert.match(dump, new RegExp(`DNS:b\\.${DOMAIN.replace('.', '\\.')}`));
    assert.doesNotMatch(dump, /www\.bank\.example/, 'the renewal does not copy a name from the old certificate');
  });
});
