/**
 * Every configuration key, top-level and in each section, has a declared type checked
 * when the file is read: a table gives each key a good value and a bad one, and the test
 * asks the table to cover every key src/config.ts declares (a new key without a row
 * fails). Each bad value is refused with `FILE:LINE: [section] key: why`; each good one
 * loads. Unknown keys and sections are refused with a "did you mean".
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configKeys, loadConfig } from '../../src/config.js';
import { PasstoreError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'passtore-config-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function write(lines: string[]): string {
  const file = join(dir, `k${n++}.conf`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** `[section] key`, or the key alone at the top. */
const id = (section: string | undefined, key: string) => (section ? `[${section}] ${key}` : key);

/** Each key: a value that loads, and a bad value with what the error says. */
const table: Record<string, { good: string; bad: string; why: RegExp }> = {
  domain: { good: 'example.org', bad: 'not a domain', why: /expected a DNS domain/ },
  db: { good: 'mysql://passtore@db.example.org:3306/passtore', bad: 'postgres://x@y/z', why: /expected sqlite:PATH or mysql:/ },
  db_password_file: { good: '/etc/passtore/db-password', bad: '', why: /expected a value/ },
  operator: { good: 'alice', bad: 'Alice Smith!', why: /bad operator name 'Alice Smith!'/ },
  admin_email: { good: 'a@example.org, b@example.org', bad: 'a@example.org, nobody', why: /not 'nobody'/ },
  crt_ttl: { good: '30', bad: '0', why: /from 1 to 3650/ },
  notify_days: { good: '30,14,7', bad: '30,x', why: /from 0 to 3650/ },
  crt_path: { good: '/etc/grid-security', bad: 'etc/grid-security', why: /absolute path/ },
  dn_template: { good: '/DC=org/CN={fqdn}', bad: '/CN=fixed', why: /\{fqdn\}/ },
  key_type: { good: 'ec-p256', bad: 'rsa-1024', why: /rsa-2048, rsa-4096 or ec-p256/ },
  idle_lock: { good: '0', bad: '1441', why: /from 0 to 1440/ },
  reveal_timeout: { good: '20', bad: '0', why: /from 1 to 600/ },
  lease_time: { good: '900', bad: '1', why: /from 2 to 86400/ },
  lease_wait: { good: '0', bad: '-1', why: /from 0 to 86400/ },
  keyfile: { good: '/var/lib/passtore/cron.key', bad: '', why: /expected a value/ },
  '[smtp] host': { good: 'mail.example.org', bad: 'mail server', why: /expected a host name or IP address, not 'mail server'/ },
  '[smtp] port': { good: '587', bad: '70000', why: /from 1 to 65535 \(a port number\)/ },
  '[smtp] secure': { good: 'true', bad: 'maybe', why: /expected true or false, not 'maybe'/ },
  '[smtp] user': { good: 'passtore', bad: '', why: /expected a value/ },
  '[smtp] password_file': { good: '/etc/passtore/smtp-password', bad: 'smtp-password', why: /expected an absolute path, not 'smtp-password'/ },
  '[smtp] from': { good: 'passtore <passtore@vault.example.org>', bad: 'passtore', why: /expected a mail address/ },
  '[smtp] insecure': { good: 'yes', bad: 'perhaps', why: /expected yes or no, not 'perhaps'/ },
  '[network] up': { good: 'ip link set eth0 up', bad: 'ip link set {iface} up', why: /unknown placeholder \{iface\}/ },
  '[network] down': { good: 'ip link set eth0 down', bad: '', why: /expected a command/ },
  '[network] allow': { good: 'fw allow {address} {port}', bad: 'fw allow {adress} {port}', why: /unknown placeholder \{adress\} \(did you mean \{address\}\?\)/ },
  '[network] revoke': { good: 'fw revoke {address} {port}', bad: 'fw revoke {address} {prot}', why: /unknown placeholder \{prot\} \(did you mean \{port\}\?\)/ },
  '[network] parallel': { good: 'yes', bad: 'often', why: /expected yes or no, not 'often'/ },
  '[network] batch': { good: 'iptables-restore --noflush -w', bad: '', why: /expected a command/ },
  '[network] batch_allow': { good: '-I OUTPUT -d {address} -p tcp --dport {port} -j ACCEPT', bad: '-I OUTPUT -d {addr} -j ACCEPT', why: /unknown placeholder \{addr\}/ },
  '[network] check': { good: 'iptables -C OUTPUT -d {address} -p tcp --dport {port} -j ACCEPT', bad: '', why: /expected a command/ },
  '[network] batch_revoke': { good: '-D OUTPUT -d {address} -p tcp --dport {port} -j ACCEPT', bad: '', why: /expected a command/ },
  '[network] batch_begin': { good: '*filter', bad: '', why: /expected a value/ },
  '[network] batch_end': { good: 'COMMIT', bad: '', why: /expected a value/ },
  '[ca] insecure': { good: 'no', bad: 'sometimes', why: /expected yes or no, not 'sometimes'/ },
  '[ca] trust': { good: '/etc/grid-security/certificates', bad: 'certificates', why: /expected an absolute path/ },
  '[ca] dir': { good: '/var/spool/passtore/incoming', bad: 'incoming', why: /expected an absolute path/ },
  '[ca] http_url': { good: 'https://ca.example.org/certs/{fqdn}.pem', bad: 'ftp://ca.example.org/{fqdn}', why: /expected a http:\/\/ or https:\/\/ URL/ },
  '[ca] http_ca_bundle': { good: '/etc/ssl/ca.pem', bad: 'ca.pem', why: /expected an absolute path/ },
  '[ca] imap_url': { good: 'imaps://certs@imap.example.org/INBOX', bad: 'imaps://imap.example.org/INBOX', why: /expected imap\[s\]:\/\/user@host/ },
  '[ca] imap_password_file': { good: '/etc/passtore/imap-password', bad: 'imap-password', why: /expected an absolute path/ },
  '[ca] imap_ca_bundle': { good: '/etc/ssl/imap-ca.pem', bad: 'imap-ca.pem', why: /expected an absolute path/ },
  '[ca] acme_directory': { good: 'https://acme.example.net/directory', bad: 'http://acme.example.net/directory', why: /expected a https:\/\/ URL/ },
  '[ca] acme_eab_kid': { good: 'kid-1234', bad: 'kid 1234', why: /expected one word/ },
  '[ca] acme_eab_hmac_file': { good: '/etc/passtore/acme-eab-hmac', bad: 'acme-eab-hmac', why: /expected an absolute path/ },
  '[ca] acme_eab_alg': { good: 'hs512', bad: 'HS384', why: /expected HS256 or HS512, not 'HS384'/ },
  '[ca] acme_email': { good: 'grid-admin@example.org', bad: 'grid-admin', why: /expected a mail address/ },
  '[ca] acme_ca_bundle': { good: '/etc/ssl/acme-ca.pem', bad: 'acme-ca.pem', why: /expected an absolute path/ },
  '[schedule] renew': { good: '17 3 * * *', bad: '03:00', why: /cron expression/ },
  '[schedule] fetch': { good: '*/15 * * * *', bad: '61 * * * *', why: /minute 61 is out of range 0-59/ },
  '[schedule] run': { good: '0 17 3 * * mon-fri', bad: '0 0 25 * * *', why: /hour 25 is out of range 0-23/ },
  '[schedule] check': { good: '0 * * * *', bad: '0 0 * 13 *', why: /month 13 is out of range 1-12/ },
  '[schedule] verify': { good: '0 5 * * 1', bad: '0 5 * * 1/0', why: /a step of 0/ },
};

/** The file's lines with the key on a line of its own, after comments; and that line. */
function placed(section: string | undefined, key: string, value: string): { lines: string[]; line: number } {
  const lines = ['# passtore configuration', 'domain = example.org', ''];
  if (section) lines.push(`[${section}]`, '; a comment in the section');
  lines.push(`${key} = ${value}`);
  if (!section && key === 'domain') lines.splice(1, 1);
  return { lines, line: lines.length };
}

test('the table covers every key src/config.ts declares', () => {
  const declared = configKeys().map((k) => id(k.section, k.key)).sort();
  assert.ok(declared.length > 30, `found ${declared.length} keys`);
  assert.deepEqual(Object.keys(table).sort(), declared);
});

describe('each key: a bad value is refused naming the file, line, section and key; a good one loads', () => {
  for (const { section, key } of configKeys()) {
    const name = id(section, key);
    const row = table[name];
    test(name, { skip: row ? false : 'no row in the table' }, () => {
      const bad = placed(section, key, row!.bad);
      const file = write(bad.lines);
      assert.throws(
        () => loadConfig(file),
        (e: unknown) => {
          assert.ok(e instanceof PasstoreError && e.code === 'config', String(e));
          assert.ok(e.message.startsWith(`${file}:${bad.line}: ${name}: `), e.message);
          assert.match(e.message, row!.why);
          assert.ok(!e.message.includes('\n'));
          return true;
        },
      );
      const good = placed(section, key, row!.good);
      const c = loadConfig(write(good.lines));
      if (section) assert.ok((c[section as 'smtp'] as Record<string, string>)[key], `${name} is read`);
    });
  }
});

test('section values reach the program as declared: secure and the EAB algorithm normalised', () => {
  const c = loadConfig(write(['[smtp]', 'secure = TRUE', '[ca]', 'acme_eab_alg = hs512']));
  assert.equal(c.smtp.secure, 'true');
  assert.equal(c.ca.acme_eab_alg, 'HS512');
});

test('unknown keys and sections: refused with a "did you mean" when one is close', () => {
  const cases: Array<[string[], number, RegExp]> = [
    [['domian = example.org'], 1, /: domian: unknown key \(did you mean domain\?\)$/],
    [['idle_lok = 5'], 1, /: idle_lok: unknown key \(did you mean idle_lock\?\)$/],
    [['colour = red'], 1, /: colour: unknown key$/],
    [['[smtp]', 'prot = 25'], 2, /: \[smtp\] prot: unknown key \(did you mean port\?\)$/],
    [['[ca]', 'acme_eab_algo = HS256'], 2, /: \[ca\] acme_eab_algo: unknown key \(did you mean acme_eab_alg\?\)$/],
    [['[schedule]', 'renw = 17 3 * * *'], 2, /: \[schedule\] renw: unknown key \(did you mean renew\?\)$/],
    [['[smpt]', 'host = mail'], 1, /: \[smpt\]: unknown section \(did you mean \[smtp\]\?\)$/],
  ];
  for (const [lines, line, why] of cases) {
    const file = write(lines);
    assert.throws(() => loadConfig(file), (e: unknown) => e instanceof PasstoreError && e.message.startsWith(`${file}:${line}: `) && why.test(e.message), lines.join(' / '));
  }
});
