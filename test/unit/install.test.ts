/**
 * The install a site admin follows: the README's first block (install, test), a start
 * that cannot resolve to a registry package, the package that `npm pack` makes for a
 * vault machine (both programs, their man pages, the systemd units), and the systemd
 * service and timer in contrib/systemd/: their ExecStart names the installed
 * passtore-cron and options the program accepts (run through the program itself), and
 * they carry the sandboxing the README and passtore-cron(8) promise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string>; files: string[] };
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const SERVICE = join(root, 'contrib', 'systemd', 'passtore-cron.service');
const TIMER = join(root, 'contrib', 'systemd', 'passtore-cron.timer');
/** Where the README's vault-machine install puts the programs. */
const BIN_DIR = '/usr/local/bin';

/** A unit file as section → key → values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      current = new Map();
      sections.set(s[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current && eq > 0, `a unit line outside a section or without '=': ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

function one(unit: Map<string, Map<string, string[]>>, section: string, key: string): string {
  const v = unit.get(section)?.get(key);
  assert.ok(v && v.length === 1, `[${section}] ${key} is set once (${JSON.stringify(v)})`);
  return v[0]!;
}

test("the README's first block is the two commands that install and test", () => {
  const first = /```(?:sh|bash)?\n([\s\S]*?)```/.exec(readme);
  assert.ok(first, 'the README has a code block');
  assert.deepEqual(first[1]!.trim().split('\n'), ['npm install', 'npm test']);
  assert.match(pkg.scripts.prepare ?? '', /tsc/, 'npm install builds (prepare)');
});

test('the shell starts with a command that cannot fetch a registry package', () => {
  assert.doesNotMatch(readme, /\bnpx passtore/, 'no npx: it runs the registry\'s namesake outside the checkout');
  assert.equal(pkg.scripts.start, `node ${pkg.bin.passtore}`);
  assert.match(readme, /^npm start$/m);
  for (const [name, file] of Object.entries(pkg.bin)) {
    const js = join(root, file);
    assert.ok(existsSync(js), `${name}: ${file} is built`);
    assert.match(readFileSync(js, 'utf8'), /^#!\/usr\/bin\/env node\n/, `${name} starts with a node shebang`);
  }
});

test('the package for a vault machine holds both programs, the man pages and the systemd units, and no tests', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const files = new Set((JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
  for (const f of [...Object.values(pkg.bin), 'man/passtore.1', 'man/passtore-cron.8', 'man/passtore.conf.5', 'contrib/systemd/passtore-cron.service', 'contrib/systemd/passtore-cron.timer', 'sql/sqlite/001-init.sql']) {
    assert.ok(files.has(f.replace(/^\.\//, '')), `the package holds ${f}`);
  }
  assert.ok(![...files].some((f) => f.startsWith('dist/test/')), 'no test in the package');
  // The README's install puts the programs where the unit looks for them.
  assert.match(readme, new RegExp(`npm install -g --prefix ${dirname(BIN_DIR)} \\S+\\.tgz`));
});

test('the systemd service runs the installed passtore-cron with options the program accepts', () => {
  const unit = parseUnit(readFileSync(SERVICE, 'utf8'));
  const [program, ...args] = one(unit, 'Service', 'ExecStart').split(/\s+/);
  assert.equal(dirname(program!), BIN_DIR);
  assert.equal(pkg.bin[basename(program!)], pkg.bin['passtore-cron'], 'ExecStart runs passtore-cron as the package installs it');
  assert.equal(one(unit, 'Service', 'Type'), 'oneshot');

  // The same arguments through the program itself, the config file swapped for one of
  // this test: it must get past its option parsing to the vault (status 3: no key file),
  // not stop at a usage error (status 2).
  const dir = mkdtempSync(join(tmpdir(), 'passtore-unit-'));
  try {
    const conf = join(dir, 'passtore.conf');
    writeFileSync(conf, `domain = example.org\ndb = sqlite:${join(dir, 'vault.db')}\n`, { mode: 0o600 });
    const configAt = args.indexOf('--config');
    assert.ok(configAt >= 0, 'ExecStart names the configuration file (/etc/passtore/passtore.conf: ProtectHome hides ~)');
    assert.equal(args[configAt + 1], '/etc/passtore/passtore.conf');
    const tried = args.map((a, i) => (i === configAt + 1 ? conf : a));
    const env = { ...process.env, XDG_DATA_HOME: dir, HOME: dir };
    const r = spawnSync(process.execPath, [join(root, pkg.bin['passtore-cron']!), ...tried], { encoding: 'utf8', env, timeout: 60_000 });
    assert.doesNotMatch(r.stdout + r.stderr, /usage:/, `${tried.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.status, 3, `${tried.join(' ')}: ${r.stdout}${r.stderr}`);
    // And the check can fail: a misspelt option is a usage error.
    const bad = spawnSync(process.execPath, [join(root, pkg.bin['passtore-cron']!), '--confg', conf, 'run'], { encoding: 'utf8', env, timeout: 60_000 });
    assert.equal(bad.status, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the systemd service is sandboxed: read-only system but its data directory, no home, own /tmp, no core, only the network capabilities', () => {
  const unit = parseUnit(readFileSync(SERVICE, 'utf8'));
  const s = unit.get('Service')!;
  assert.equal(one(unit, 'Service', 'NoNewPrivileges'), 'yes');
  assert.equal(one(unit, 'Service', 'ProtectSystem'), 'strict');
  assert.equal(one(unit, 'Service', 'ProtectHome'), 'yes');
  assert.equal(one(unit, 'Service', 'PrivateTmp'), 'yes');
  assert.equal(one(unit, 'Service', 'LimitCORE'), '0');
  assert.deepEqual(one(unit, 'Service', 'CapabilityBoundingSet').split(/\s+/).sort(), ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
  // The data directory passtore-cron uses ($XDG_DATA_HOME/passtore) is the writable one.
  const dataHome = /^XDG_DATA_HOME=(.+)$/.exec(one(unit, 'Service', 'Environment'))?.[1];
  assert.ok(dataHome, 'Environment sets XDG_DATA_HOME');
  assert.ok((s.get('ReadWritePaths') ?? []).includes(join(dataHome, 'passtore')), 'ReadWritePaths names the data directory');
  assert.equal(join('/var/lib', one(unit, 'Service', 'StateDirectory')), join(dataHome, 'passtore'), 'systemd makes the data directory');
  assert.equal(one(unit, 'Service', 'StateDirectoryMode'), '0700');
});

test('the timer starts the service daily and the docs point to both files', () => {
  const unit = parseUnit(readFileSync(TIMER, 'utf8'));
  assert.equal(one(unit, 'Timer', 'OnCalendar'), 'daily');
  assert.equal(one(unit, 'Install', 'WantedBy'), 'timers.target');
  assert.equal(unit.get('Timer')!.get('Unit'), undefined, 'the timer starts the service of its own name');
  assert.match(readme, /contrib\/systemd\/passtore-cron\.service/);
  const man = readFileSync(join(root, 'man', 'passtore-cron.8'), 'utf8');
  assert.match(man, /contrib\/systemd\/passtore\\?-cron\.service/);
});

test('systemd accepts every directive of both units', { skip: spawnSync('systemd-analyze', ['--version']).status === 0 ? false : 'no systemd-analyze here' }, () => {
  for (const file of [SERVICE, TIMER]) {
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60_000 });
    // The program is not installed here and man pages may be missing: those two only.
    const complaints = (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '' && !/is not executable|Command 'man /.test(l));
    assert.deepEqual(complaints, [], `${basename(file)}: ${complaints.join('\n')}`);
  }
});
