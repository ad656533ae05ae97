/**
 * Configuration (SPEC section 10) on real files: the defaults, every key with a good and
 * a bad value, unknown keys and sections named as FILE:LINE: key, unreadable files, and
 * the original tool's sanctorum.conf keys.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataDir, defaultConfig, findConfigFile, loadConfig, type Config } from '../../src/config.js';
import { PasstoreError } from '../../src/errors.js';

let dir: string;
let n = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'passtore-config-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a config file from lines; returns its path. */
function file(...lines: string[]): string {
  const path = join(dir, `passtore-${++n}.conf`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const load = (...lines: string[]): Config => loadConfig(file(...lines));

/** Asserts the lines are refused with `FILE:LINE: key: …why…` (LINE omitted when 0). */
function refused(lines: string[], line: number, key: string, why?: RegExp): void {
  const path = file(...lines);
  assert.throws(
    () => loadConfig(path),
    (e: unknown) => {
      assert.ok(e instanceof PasstoreError, `expected a PasstoreError, got ${String(e)}`);
      assert.equal(e.code, 'config');
      assert.equal(e.exitStatus, 2);
      const where = line ? `${path}:${line}: ` : `${path}: `;
      assert.ok(e.message.startsWith(`${where}${key}: `), `'${e.message}' starts with '${where}${key}: '`);
      if (why) assert.match(e.message, why);
      assert.ok(!e.message.includes('\n'));
      return true;
    },
  );
}

describe('defaults', () => {
  test('with no config file anywhere, the defaults', (t) => {
    if (existsSync('/etc/passtore/passtore.conf')) return t.skip('this machine has /etc/passtore/passtore.conf');
    const saved = { PASSTORE_CONFIG: process.env.PASSTORE_CONFIG, XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME };
    try {
      delete process.env.PASSTORE_CONFIG;
      process.env.XDG_CONFIG_HOME = join(dir, 'empty-xdg');
      assert.equal(findConfigFile(), undefined);
      assert.deepEqual(loadConfig(), defaultConfig());
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test('the default values', () => {
    const d = defaultConfig();
    assert.equal(d.file, undefined);
    assert.equal(d.domain, undefined);
    assert.equal(d.db, `sqlite:${join(dataDir(), 'vault.db')}`);
    assert.equal(d.dbPasswordFile, undefined);
    assert.match(d.operator, /^[a-z_][a-z0-9_.-]{0,31}$/);
    assert.deepEqual(d.adminEmail, []);
    assert.equal(d.crtTtl, 30);
    assert.deepEqual(d.notifyDays, [30, 14, 7, 2]);
    assert.equal(d.crtPath, '/etc/grid-security');
    assert.equal(d.dnTemplate, '/CN={fqdn}');
    assert.equal(d.keyType, 'rsa-2048');
    assert.equal(d.idleLock, 15);
    assert.equal(d.revealTimeout, 20);
    assert.equal(d.keyfile, undefined);
    assert.deepEqual([d.smtp, d.network, d.ca, d.schedule], [{}, {}, {}, {}]);
  });

  test('an empty file, or only comments, gives the defaults and names the file', () => {
    const path = file('# nothing here', '; nor here', '');
    assert.deepEqual(loadConfig(path), { ...defaultConfig(), file: path });
  });

  test('$PASSTORE_CONFIG names the file', () => {
    const path = file('domain = env.example.org');
    const saved = process.env.PASSTORE_CONFIG;
    try {
      process.env.PASSTORE_CONFIG = path;
      assert.equal(findConfigFile(), path);
      assert.equal(loadConfig().domain, 'env.example.org');
    } finally {
      if (saved === undefined) delete process.env.PASSTORE_CONFIG;
      else process.env.PASSTORE_CONFIG = saved;
    }
  });
});

describe('every key', () => {
  test('good values are read and normalised', () => {
    const c = load(
      '# a comment',
      'domain = Example.ORG',
      'db = mysql://passtore@db.example.org:3307/passtore',
      'db_password_file = secrets/db-password',
      'operator = bob',
      'admin_email = root@example.org, hostmaster@example.org',
      'crt_ttl = 90',
      'notify_days = 7,30,14,7',
      'crt_path = /etc/grid-security/',
      'dn_template = /DC=org/DC=example/CN={fqdn}',
      'key_type = ec-p256',
      'idle_lock = 0',
      'reveal_timeout = 5',
      'keyfile = cron.key',
    );
    assert.equal(c.domain, 'example.org');
    assert.equal(c.db, 'mysql://passtore@db.example.org:3307/passtore');
    assert.equal(c.dbPasswordFile, join(dir, 'secrets', 'db-password'), 'relative to the config file');
    assert.equal(c.operator, 'bob');
    assert.deepEqual(c.adminEmail, ['root@example.org', 'hostmaster@example.org']);
    assert.equal(c.crtTtl, 90);
    assert.deepEqual(c.notifyDays, [30, 14, 7], 'sorted, longest first, without repeats');
    assert.equal(c.crtPath, '/etc/grid-security');
    assert.equal(c.dnTemplate, '/DC=org/DC=example/CN={fqdn}');
    assert.equal(c.keyType, 'ec-p256');
    assert.equal(c.idleLock, 0);
    assert.equal(c.revealTimeout, 5);
    assert.equal(c.keyfile, join(dir, 'cron.key'));
  });

  test('an sqlite path is taken relative to the config file; socket URLs are kept', () => {
    assert.equal(load('db = sqlite:vault/v.db').db, `sqlite:${join(dir, 'vault', 'v.db')}`);
    assert.equal(load('db = sqlite:/var/lib/passtore/v.db').db, 'sqlite:/var/lib/passtore/v.db');
    assert.equal(load('db = mysql://p@localhost/pt?socket=/srv/db/mariadb.sock').db, 'mysql://p@localhost/pt?socket=/srv/db/mariadb.sock');
    assert.equal(load('key_type = rsa-4096').keyType, 'rsa-4096');
    assert.equal(load('key_type = rsa-2048').keyType, 'rsa-2048');
    assert.equal(load('crt_path = /').crtPath, '/');
    assert.deepEqual(load('notify_days = 0').notifyDays, [0]);
  });

  const bad: Array<[string, RegExp]> = [
    ['domain = localhost', /expected a DNS domain/],
    ['domain = exa mple.org', /expected a DNS domain/],
    ['domain = example.org;rm', /quote the whole value|expected a DNS domain/],
    ['db = postgres://u@h/db', /expected sqlite:PATH or mysql:/],
    ['db = mysql://h/db', /expected sqlite:PATH or mysql:/],
    ['db = mysql://u@h/bad-name', /expected sqlite:PATH or mysql:/],
    ['db = sqlite:', /expected sqlite:PATH or mysql:/],
    ['operator = Bob!', /operator name/],
    ['operator = $(id)', /operator name/],
    ['admin_email = not-an-address', /expected comma-separated mail addresses, not 'not-an-address'/],
    ['admin_email = ,', /expected comma-separated mail addresses/],
    ['crt_ttl = 0', /from 1 to 3650/],
    ['crt_ttl = 3651', /from 1 to 3650/],
    ['crt_ttl = abc', /from 1 to 3650/],
    ['crt_ttl = -5', /from 1 to 3650/],
    ['crt_ttl = 1.5', /from 1 to 3650/],
    ['notify_days = 7,x', /from 0 to 3650/],
    ['notify_days = 7,,14', /from 0 to 3650/],
    ['crt_path = etc/grid-security', /absolute path/],
    ['crt_path = /etc/../tmp', /without \.\./],
    ['dn_template = /CN=host', /\{fqdn\}/],
    ['key_type = rsa-1024', /rsa-2048, rsa-4096 or ec-p256/],
    ['key_type = dsa', /rsa-2048, rsa-4096 or ec-p256/],
    ['idle_lock = 1441', /from 0 to 1440/],
    ['idle_lock = never', /from 0 to 1440/],
    ['reveal_timeout = 0', /from 1 to 600/],
    ['reveal_timeout = 601', /from 1 to 600/],
  ];
  for (const [line, why] of bad) {
    test(`refused: ${line}`, () => {
      const key = line.split(' = ')[0]!;
      refused(['# header comment', '', '; another comment', line], 4, key, why);
    });
  }

  test('a key with no value, or with a bare word, is refused', () => {
    refused(['domain = example.org', 'crt_ttl'], 2, 'crt_ttl', /expected key = value/);
    refused(['domain ='], 1, 'domain', /expected a DNS domain/);
  });

  test('an unquoted ; or # in a value is refused rather than cut short; quoted, it is kept', () => {
    refused(['[network]', 'up = ssh gw firewall-open {address}; logger opened'], 2, '[network] up', /quote the whole value/);
    refused(['[network]', 'down = ssh gw close # now'], 2, '[network] down', /quote the whole value/);
    assert.equal(load('[network]', 'up = "ssh gw open {address}; logger opened"').network.up, 'ssh gw open {address}; logger opened');
  });

  test('a repeated key is refused, or at least checked on the line that is used', () => {
    // `ini` keeps the last value; lineOf() finds the first line, so the ; check reads the
    // wrong line and the command is silently cut at the ;.
    const path = file('[network]', 'up = echo harmless', 'up = ssh gw open {address}; logger opened');
    assert.throws(() => loadConfig(path), (e: unknown) => e instanceof PasstoreError && e.message.startsWith(`${path}:3: [network] up: `));
    refused(['domain = example.org', 'domain = localhost'], 2, 'domain');
  });
});

describe('sections', () => {
  test('known sections and their keys are read', () => {
    const c = load(
      'domain = example.org',
      '[smtp]',
      'host = mail.example.org',
      'port = 587',
      'from = passtore@example.org',
      '[network]',
      'up = sudo fw-open {address} {port}',
      'down = sudo fw-close {address} {port}',
      '[ca]',
      'http_url = https://ca.example.org/certs/{fqdn}.pem',
      '[schedule]',
      'renew = 17 3 * * *',
    );
    assert.deepEqual(c.smtp, { host: 'mail.example.org', port: '587', from: 'passtore@example.org' });
    assert.deepEqual(c.network, { up: 'sudo fw-open {address} {port}', down: 'sudo fw-close {address} {port}' });
    assert.deepEqual(c.ca, { http_url: 'https://ca.example.org/certs/{fqdn}.pem' });
    assert.deepEqual(c.schedule, { renew: '17 3 * * *' });
  });

  test('an unknown key at the top is named with its file and line', () => {
    refused(['# comment', '', 'domain = example.org', 'colour = red'], 4, 'colour', /unknown key/);
    refused(['DOMAIN = example.org'], 1, 'DOMAIN', /unknown key/);
  });

  test('an unknown key in a section is named with the section, file and line', () => {
    refused(['domain = example.org', '[smtp]', 'host = mail', 'bogus = 1'], 4, '[smtp] bogus', /unknown key/);
    refused(['[schedule]', 'sometimes = 1'], 2, '[schedule] sometimes', /unknown key/);
    refused(['[network]', 'up ='], 2, '[network] up', /expected a command/);
    refused(['[network]', 'up = ip link set eth0 up', 'parallel = maybe'], 3, '[network] parallel', /expected yes or no/);
    refused(['[ca]', 'grid = x'], 2, '[ca] grid', /unknown key/);
    refused(['[ca]', 'dir ='], 2, '[ca] dir', /expected an absolute path, not an empty value/);
    refused(['[schedule]', 'renew = 03:00'], 2, '[schedule] renew', /cron expression/);
  });

  test('an unknown section is named with its header line', () => {
    refused(['domain = example.org', '', '[smtp]', 'host = mail', '[bogus]', 'a = b'], 5, '[bogus]', /unknown section/);
  });
});

describe('unreadable files', () => {
  test('a file that does not exist', () => {
    const path = join(dir, 'no-such.conf');
    assert.throws(() => loadConfig(path), (e: unknown) => e instanceof PasstoreError && e.code === 'config' && e.message === `${path}: cannot read the configuration (ENOENT)`);
  });

  test('a directory', () => {
    const path = join(dir, 'a-directory.conf');
    mkdirSync(path);
    assert.throws(() => loadConfig(path), (e: unknown) => e instanceof PasstoreError && e.code === 'config' && e.message === `${path}: cannot read the configuration (EISDIR)`);
  });
});

describe("the original tool's sanctorum.conf keys", () => {
  test('crt_TTL is crt_ttl', () => {
    assert.equal(load('crt_TTL = 45').crtTtl, 45);
    refused(['domain = example.org', 'crt_TTL = 0'], 2, 'crt_TTL', /from 1 to 3650/);
  });

  test('dbuser and dbname make a MySQL URL; the password defaults to .sanctorum beside the file', () => {
    const sub = join(dir, 'etc-sanctorum');
    mkdirSync(sub);
    const path = join(sub, 'sanctorum.conf');
    writeFileSync(path, ['domain = example.org', 'dbuser = sanctorum', 'dbname = sanctorum_db', 'admin_email = root@example.org', 'crt_path = /etc/grid-security'].join('\n'));
    const c = loadConfig(path);
    assert.equal(c.db, 'mysql://sanctorum@localhost/sanctorum_db');
    assert.equal(c.dbPasswordFile, join(sub, '.sanctorum'));
    assert.equal(c.domain, 'example.org');
    assert.deepEqual(c.adminEmail, ['root@example.org']);
  });

  test('an explicit db_password_file wins over .sanctorum', () => {
    const c = load('dbuser = sanctorum', 'dbname = sanctorum', 'db_password_file = /etc/passtore/db-password');
    assert.equal(c.db, 'mysql://sanctorum@localhost/sanctorum');
    assert.equal(c.dbPasswordFile, '/etc/passtore/db-password');
  });

  test('dbuser without dbname, either without the other, or both with db, are refused', () => {
    refused(['dbuser = sanctorum'], 0, 'dbname', /dbuser and dbname go together/);
    refused(['dbname = sanctorum'], 0, 'dbuser', /dbuser and dbname go together/);
    refused(['db = sqlite:v.db', 'dbuser = sanctorum', 'dbname = sanctorum'], 2, 'dbuser', /either db or the old dbuser\/dbname/);
    refused(['dbuser = sanctorum', 'dbname = bad-name'], 2, 'dbname', /expected/);
  });
});
