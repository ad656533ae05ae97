/**
 * Hostile input and hostile neighbours, through the real shell on a pseudo-terminal and the
 * real passtore-cron: a script cannot make a key file, pin a host key or print a file; a
 * link planted where passtore writes is never followed; every escape a neighbour sends
 * arrives visible; rows planted in the database are refused; a configuration others can
 * write is refused before anything runs; devices and crafted key slots cannot hang passtore.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { makeHome, pause, plain, PtySession, type Home } from '../support/pty.js';
import { FixtureCa, openssl } from '../x509/fixture-ca.js';

const PASSPHRASE = 'Hostile suite passphrase 4711';
const CRON = fileURLToPath(new URL('../../src/bin/passtore-cron.js', import.meta.url));
const ESC = '\x1b';

function vaultDb(home: Home): string {
  return join(home.dir, '.local', 'share', 'passtore', 'vault.db');
}

/** passtore-cron with this HOME and config; returns status and output. */
function cron(home: Home, args: string[], config = home.configFile): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CRON, '--config', config, ...args], { env: { ...home.env, XDG_DATA_HOME: join(home.dir, '.local', 'share') }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('hostile input through the shell', () => {
  let home: Home;
  let sh: PtySession;
  let work: string;

  before(async () => {
    home = makeHome(['domain = example.org', 'operator = alice', 'reveal_timeout = 30']);
    work = join(home.dir, 'work');
    mkdirSync(work);
    sh = new PtySession([], home.env);
    await sh.createVault(PASSPHRASE);
    assert.match(await sh.command('host add ce-01'), /added host ce-01\.example\.org/);
    assert.match(await sh.command('add ce-01', 'Stored-Root-Pw-77', 'Stored-Root-Pw-77'), /stored root@ce-01/);
  });

  after(() => {
    sh?.kill();
    home?.remove();
  });

  test('2: a script cannot create a key file; typed, keyfile create asks the passphrase again; list and rm', async () => {
    const key = join(work, 'usb.key');
    const script = join(work, 'steal.txt');
    writeFileSync(script, `keyfile create ${key}\nbackup ${work}\n`);
    const out = await sh.command(`source ${script}`);
    assert.match(out, /keyfile create decides what passtore trusts and runs only when typed at the terminal/);
    assert.match(out, /stopped at the first failure/);
    assert.ok(!existsSync(key), 'no key file was written by the script');
    assert.ok(!readdirSync(work).some((f) => f.startsWith('passtore-')), 'the backup line never ran');

    // Typed: the passphrase is asked again; a wrong one makes nothing.
    const wrong = await sh.command(`keyfile create ${key}`, 'not the passphrase');
    assert.match(wrong, /Passphrase for alice \(again, to create a key file\)/);
    assert.match(wrong, /wrong passphrase; no key file was created/);
    assert.ok(!existsSync(key));
    assert.match(await sh.command(`keyfile create ${key}`, PASSPHRASE), new RegExp(`wrote key file ${key} \\(mode 0400\\)`));
    assert.equal(statSync(key).mode & 0o777, 0o400);
    assert.match(await sh.command('keyfile list'), new RegExp(`KEY FILE[\\s\\S]*${key}`));

    // The key file opens the vault for passtore-cron, until its slot is removed.
    writeFileSync(home.configFile, `domain = example.org\noperator = alice\nkeyfile = ${key}\n`);
    assert.equal(cron(home, ['check']).status, 0);
    assert.match(await sh.command(`keyfile rm ${key}`, 'y'), /removed the key file slot .* run rekey/);
    assert.match(await sh.command('keyfile list'), /no key file slots/);
    const after = cron(home, ['check']);
    assert.equal(after.status, 3, after.out);
    assert.match(after.out, /no key slot/);
  });

  test('1: host trust is refused in a script; host address stays scriptable', async () => {
    const script = join(work, 'trust.txt');
    writeFileSync(script, 'host address ce-01 127.0.0.1 --port 2222\nhost trust ce-01 --replace\n');
    const out = await sh.command(`source ${script} --keep-going`);
    assert.match(out, /ce-01\.example\.org is reached at 127\.0\.0\.1:2222/);
    assert.match(out, /host trust decides what passtore trusts and runs only when typed at the terminal, never from a script/);
    assert.match(out, /1 of 2 commands failed/);
  });

  test('7: source echoes only command lines; a key file or a password file is never shown; NUL and binary refused', async () => {
    const pwFile = join(work, 'root.pw');
    writeFileSync(pwFile, 'Plain-Secret-In-A-File-4711\n');
    const one = await sh.command(`source ${pwFile}`);
    assert.doesNotMatch(one, /Plain-Secret-In-A-File-4711/);
    assert.match(one, new RegExp(`${pwFile}:1: not a passtore command \\(line not shown\\)`));

    const keyish = join(work, 'fake.key');
    writeFileSync(keyish, 'passtore-keyfile v1\nQk9HVVMtS0VZLU1BVEVSSUFMLTAxMjM0NTY3ODk=\nlist\n');
    const kept = await sh.command(`source ${keyish} --keep-going`);
    assert.doesNotMatch(kept, /passtore-keyfile v1|Qk9HVVMtS0VZ/);
    assert.match(kept, new RegExp(`${keyish}:1: not a passtore command`));
    assert.match(kept, new RegExp(`${keyish}:2: not a passtore command`));
    assert.match(kept, /passtore> list/, 'a command line is echoed');

    const nul = join(work, 'nul.txt');
    writeFileSync(nul, 'list\n\0secret\n');
    assert.match(await sh.command(`source ${nul}`), /holds a NUL byte: not a script; nothing was run/);
    const bin = join(work, 'bin.txt');
    writeFileSync(bin, Buffer.from([0x6c, 0x69, 0x73, 0x74, 0x0a, 0xff, 0xfe, 0x0a]));
    assert.match(await sh.command(`source ${bin}`), /is not UTF-8 text: not a script/);
  });

  test('10: source and getcrt of /dev/zero stop at once; a FIFO does not hang', async () => {
    assert.match(await sh.command('source /dev/zero'), /\/dev\/zero is not a regular file; not read/);
    assert.match(await sh.command('getcrt /dev/zero'), /\/dev\/zero is not a regular file/);
    const fifo = join(work, 'fifo');
    spawnSync('mkfifo', [fifo]);
    assert.match(await sh.command(`source ${fifo}`), /is not a regular file; not read/);
  });

  test('6: escapes in a script line, a file name and an error arrive visible, never raw', async () => {
    const script = join(work, 'escapes.txt');
    writeFileSync(script, `list \x1b[3A\x1b[J\u009b2J\u202eevil\nlist ok\x1b]0;owned\x07\n`);
    const start = sh.transcript.length;
    await sh.command(`source ${script} --keep-going`);
    const raw = sh.transcript.slice(start);
    assert.ok(raw.includes('\\x1b[3A\\x1b[J\\u009b2J\\u202eevil'), `escaped echo: ${JSON.stringify(raw)}`);
    assert.ok(raw.includes('\\x1b]0;owned\\x07'));
    for (const bad of [`${ESC}[3A`, `${ESC}[J`, '\u009b', '\u202e', `${ESC}]0;`, '\x07']) assert.ok(!raw.includes(bad), `no raw ${JSON.stringify(bad)} reached the terminal`);

    // importcert names files it cannot use: a hostile file name is shown escaped.
    const dir = join(work, 'import');
    mkdirSync(dir);
    writeFileSync(join(dir, `x${ESC}]0;pwned${ESC}\\${ESC}[2J.pem`), 'not a certificate\n');
    const s2 = sh.transcript.length;
    await sh.command(`importcert ${dir}`);
    const raw2 = sh.transcript.slice(s2);
    assert.ok(raw2.includes('\\x1b]0;pwned\\x1b\\\\x1b[2J'), `escaped file name: ${JSON.stringify(raw2)}`);
    assert.ok(!raw2.includes(`${ESC}]0;`) && !raw2.includes(`${ESC}[2J`));
  });

  test('5: crtreq --out never follows a link planted at its temporary or final name', async () => {
    const out = join(work, 'req');
    mkdirSync(out, { mode: 0o777 });
    chmodSync(out, 0o1777);
    const victim = join(work, 'victim.db');
    writeFileSync(victim, 'precious', { mode: 0o600 });
    symlinkSync(victim, join(out, 'ce-01.example.org.req.tmp'));
    symlinkSync(victim, join(out, 'ce-01.example.org.req'));
    assert.match(await sh.command(`crtreq ce-01 --out ${out}`), /ce-01\.example\.org/);
    assert.equal(readFileSync(victim, 'utf8'), 'precious', 'the link target is unchanged');
    assert.equal(statSync(victim).mode & 0o777, 0o600, 'the link target keeps its mode');
    const req = join(out, 'ce-01.example.org.req');
    assert.ok(lstatSync(req).isFile(), 'the request replaced the link itself');
    assert.equal(lstatSync(req).mode & 0o777, 0o644);
    assert.match(readFileSync(req, 'utf8'), /BEGIN CERTIFICATE REQUEST/);
    assert.ok(lstatSync(join(out, 'ce-01.example.org.req.tmp')).isSymbolicLink(), 'the planted link is left alone');

    // A key file is never written through a link either.
    const keyLink = join(out, 'cron.key');
    symlinkSync(victim, keyLink);
    assert.match(await sh.command(`keyfile create ${keyLink}`, PASSPHRASE), /already exists; a key file is never overwritten/);
    assert.equal(readFileSync(victim, 'utf8'), 'precious');
    assert.equal(statSync(victim).mode & 0o777, 0o600);
  });

  test('9: a host planted in the database is refused with an integrity error; nothing is written outside', async () => {
    const escaped = join(work, 'escaped');
    const db = new Database(vaultDb(home));
    db.prepare('INSERT INTO hosts (fqdn, address, port, created_at) VALUES (?, NULL, 22, ?)').run(`../../../..${escaped}/pwn`, new Date().toISOString());
    db.close();
    const out = join(work, 'req9');
    const got = await sh.command(`crtreq '*' --out ${out}`);
    assert.match(got, /error: the store holds a host '\.\.\/\.\.\/.*' that passtore would never write .*the row is refused/);
    assert.ok(!existsSync(escaped), 'nothing was written outside the directory');
    assert.match(await sh.command('list'), /error: the store holds a host/);
    const fix = new Database(vaultDb(home));
    fix.prepare("DELETE FROM hosts WHERE fqdn LIKE '../%'").run();
    fix.close();
    assert.match(await sh.command('list'), /ce-01 .*root:ssh/);
  });
});

describe('hostile configuration and key slots', () => {
  test('8: a configuration others can write is refused before anything runs (shell and passtore-cron)', async () => {
    const home = makeHome(['domain = example.org']);
    try {
      const marker = join(home.dir, 'ran-up');
      writeFileSync(home.configFile, `domain = example.org\nkeyfile = ${join(home.dir, 'k')}\n[network]\nup = /usr/bin/touch ${marker}\ndown = /bin/true\nallow = /bin/true\nrevoke = /bin/true\n`);
      chmodSync(home.configFile, 0o666);
      const sh = new PtySession([], home.env);
      const status = await sh.exited(10_000);
      assert.equal(status, 2);
      const text = plain(sh.transcript).trim();
      assert.equal(text.split('\n').length, 1, text);
      assert.match(text, new RegExp(`configuration ${home.configFile} \\(mode 0666\\) is writable by group and others; refused`));
      const v = cron(home, ['verify']);
      assert.equal(v.status, 2, v.out);
      assert.match(v.out, /\(mode 0666\) is writable by group and others; refused/);
      assert.ok(!existsSync(marker), 'the up command never ran');

      chmodSync(home.configFile, 0o644);
      chownSync(home.configFile, 65534, 65534);
      const o = cron(home, ['verify']);
      assert.equal(o.status, 2, o.out);
      assert.match(o.out, /\(mode 0644\) is owned by uid 65534, neither root nor the user running passtore; refused/);
      chownSync(home.configFile, process.getuid!(), process.getgid!());
      chmodSync(join(home.dir, '.config', 'passtore'), 0o775);
      const d = cron(home, ['verify']);
      assert.equal(d.status, 2, d.out);
      assert.match(d.out, /the directory .*\.config\/passtore \(mode 0775\) is writable by group; refused/);
      assert.ok(!existsSync(marker), 'the up command never ran');
    } finally {
      home.remove();
    }
  });

  test('10: a crafted key slot (scrypt N = 2^30) is refused at once, not derived', async () => {
    const home = makeHome(['domain = example.org', 'operator = alice']);
    try {
      const sh = new PtySession([], home.env);
      await sh.createVault(PASSPHRASE);
      sh.line('exit');
      await sh.exited();
      const db = new Database(vaultDb(home));
      const row = db.prepare("SELECT kdf FROM key_slots WHERE name = 'alice'").get() as { kdf: string };
      const kdf = JSON.parse(row.kdf) as Record<string, unknown>;
      db.prepare("UPDATE key_slots SET kdf = ? WHERE name = 'alice'").run(JSON.stringify({ ...kdf, N: 2 ** 30, p: 64 }));
      db.close();
      const again = new PtySession([], home.env);
      await again.expect(/Passphrase for alice: $/);
      await pause(30);
      const t = Date.now();
      again.line(PASSPHRASE);
      await again.exited(10_000);
      assert.ok(Date.now() - t < 5_000, 'refused without deriving');
      assert.match(plain(again.transcript), /a key slot asks for scrypt N=1073741824 r=8 p=64, beyond the bound/);
    } finally {
      home.remove();
    }
  });
});

describe('getcrt names the issuer and asks before storing a certificate that does not verify', () => {
  test('4: a certificate from a CA of its own is shown with its issuer and stored only if confirmed', async () => {
    const ca = await FixtureCa.create();
    const home = makeHome(['domain = example.org', 'operator = alice']);
    try {
      writeFileSync(home.configFile, `domain = example.org\noperator = alice\n[ca]\ntrust = ${ca.caCert}\n`);
      const sh = new PtySession([], home.env);
      await sh.createVault(PASSPHRASE);
      const out = join(home.dir, 'req');
      assert.match(await sh.command('host add ce-01'), /added host/);
      mkdirSync(out);
      assert.match(await sh.command(`crtreq ce-01 --out ${out}`), /ce-01/);
      const req = join(out, 'ce-01.example.org.req');
      const evil = join(home.dir, 'evil');
      mkdirSync(evil);
      await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(evil, 'ca.key')]);
      await openssl(['req', '-x509', '-new', '-key', join(evil, 'ca.key'), '-subj', '/CN=Totally Real CA', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-out', join(evil, 'ca.crt')]);
      await openssl(['x509', '-req', '-in', req, '-CA', join(evil, 'ca.crt'), '-CAkey', join(evil, 'ca.key'), '-set_serial', '0x99', '-days', '30', '-copy_extensions', 'copy', '-out', join(evil, 'forged.crt')]);
      const refused = await sh.command(`getcrt ${join(evil, 'forged.crt')}`, 'n');
      assert.match(refused, /issued by (\/)?CN=Totally Real CA, which is not a trusted CA/);
      assert.match(refused, /Store .* issued by (\/)?CN=Totally Real CA, although it does not verify\? \[y\/N\]/);
      assert.match(refused, /error: nothing was stored/);
      assert.match(await sh.command('lcrt'), /no certificate|ce-01[^\n]*(pending|requested|—|-)/i);
      const good = await ca.sign(req);
      const stored = await sh.command(`getcrt ${good}`);
      assert.match(stored, /verified to the trusted CA (\/DC=org\/DC=example\/O=Test\/CN=Passtore Fixture CA|CN=Passtore Fixture CA,O=Test,DC=example,DC=org)/);
      assert.match(stored, /stored the certificate for ce-01\.example\.org/);

      // importcert: a pair whose certificate a CA of its own issued is listed with its issuer.
      const imp = join(home.dir, 'import');
      mkdirSync(imp);
      await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(imp, 'wn-01.key')]);
      await openssl(['req', '-new', '-key', join(imp, 'wn-01.key'), '-subj', '/CN=wn-01.example.org', '-addext', 'subjectAltName=DNS:wn-01.example.org', '-out', join(evil, 'wn-01.req')]);
      await openssl(['x509', '-req', '-in', join(evil, 'wn-01.req'), '-CA', join(evil, 'ca.crt'), '-CAkey', join(evil, 'ca.key'), '-set_serial', '0x98', '-days', '30', '-copy_extensions', 'copy', '-out', join(imp, 'wn-01.crt')]);
      const imported = await sh.command(`importcert ${imp}`, 'n');
      assert.match(imported, /wn-01\.crt +(\/)?CN=Totally Real CA/);
      assert.match(imported, /1 certificate above does not verify to a trusted CA \(\[ca\] trust\); import anyway\? \[y\/N\]/);
      assert.match(imported, /wn-01\.crt +issued by (\/)?CN=Totally Real CA, which is not a trusted CA/);
      assert.match(imported, /0 pairs added/);
      assert.doesNotMatch(await sh.command('list'), /wn-01/);
      sh.line('exit');
      await sh.exited();
    } finally {
      home.remove();
      ca.remove();
    }
  });
});

