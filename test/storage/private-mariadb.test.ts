/**
 * The MariaDB the tests use is their own: test/support/mariadb.ts starts a private server
 * per test process (its own data directory, socket and port) and removes it when the
 * process ends, however it ends. These tests check that, and that the machine's own
 * MariaDB, if one runs, keeps its process through a private server's whole life (start,
 * databases, stop and restart as the outage test does, end), without connecting to it.
 * .ci/run compares the system server's pid, users and databases around the whole run.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createTestDatabase, mariadbSkip, privateMariadb } from '../support/mariadb.js';

const here = dirname(fileURLToPath(import.meta.url));
const skip = await mariadbSkip();

/** Every running mariadbd: pid → its data directory option (none for a system server). */
function mariadbds(): Map<number, string> {
  const found = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (/mariadbd$|mysqld$/.test(argv[0] ?? '')) found.set(Number(name), argv.find((a) => a.startsWith('--datadir=')) ?? '');
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The servers no test started: those without a private data directory. */
function systemServers(): number[] {
  return [...mariadbds()].filter(([, d]) => !/passtore-mariadb-/.test(d)).map(([p]) => p).sort();
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

test('no test names the system MariaDB socket or its run directory', () => {
  const root = join(here, '..', '..', '..', 'test');
  const systemPaths = ['/run/' + 'mysqld', 'mysqld' + '.sock', '/var/lib/' + 'mysql'];
  const files = sourceFiles(root);
  assert.ok(files.length > 20, `found the test sources in ${root}`);
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    for (const p of systemPaths) assert.ok(!text.includes(p), `${f} names ${p}`);
  }
});

test('.ci/run installs MariaDB but starts no system server, and compares the system server before and after the tests', () => {
  const ci = readFileSync(join(here, '..', '..', '..', '.ci', 'run'), 'utf8');
  assert.match(ci, /mariadb-server/);
  assert.doesNotMatch(ci, /start-stop-daemon|\/usr\/sbin\/mariadbd|systemctl start mariadb|service mariadb/, '.ci/run starts no MariaDB server');
  const before = ci.indexOf('before=$(system_mariadb)');
  const tests = ci.indexOf('npm test');
  const afterAt = ci.indexOf('after=$(system_mariadb)');
  assert.ok(before >= 0 && before < tests && tests < afterAt, 'the system server is looked at before and after npm test');
  assert.match(ci, /if \[ "\$before" != "\$after" \]; then[\s\S]*exit 1/);
  for (const what of ['pid: ', 'mysql.user', 'SCHEMATA']) assert.ok(ci.includes(what), `the comparison includes ${what}`);
});

describe('a private MariaDB server per test process', { skip }, () => {
  test('has its own socket and port, and leaves a system server running as it was through start, stop and restart', async () => {
    const before = systemServers();
    const s = await privateMariadb();
    assert.match(s.socket, /passtore-mariadb-[^/]+\/sock$/);
    assert.notEqual(s.port, 3306);
    const db = await createTestDatabase();
    assert.match(db.url, new RegExp(`^mysql://passtore_test@127\\.0\\.0\\.1:${s.port}/passtore_t_`));
    assert.match(await s.client(['-e', 'SELECT @@port AS p, @@socket AS s']), new RegExp(`${s.port}\\s+${s.socket}`));
    const pid = s.pid();
    assert.ok(pid && mariadbds().get(pid)?.includes(s.dir), 'the private server runs on its own directory');
    await s.stop();
    assert.equal(s.pid(), undefined);
    assert.ok(!mariadbds().has(pid!), 'the private server stopped');
    assert.deepEqual(systemServers(), before, 'stopping the private server stops no other');
    await s.start();
    assert.match(await db.sql('SELECT 1 AS one'), /one\s+1/);
    await db.drop();
    assert.deepEqual(systemServers(), before, 'the system server keeps its process');
  });

  for (const end of ['exits normally', 'fails with an uncaught error', 'is killed with SIGKILL'] as const) {
    test(`is stopped and removed when its process ${end}`, async () => {
      const before = systemServers();
      const url = pathToFileURL(join(here, '..', 'support', 'mariadb.js')).href;
      const code = [
        `const m = await import(${JSON.stringify(url)});`,
        'await m.createTestDatabase();',
        'const s = await m.privateMariadb();',
        'console.log(JSON.stringify({ dir: s.dir, pid: s.pid() }));',
        // It goes on only when the parent has seen its server (a line on standard input).
        "await new Promise((r) => process.stdin.once('data', r)); process.stdin.destroy();",
        end === 'fails with an uncaught error' ? "throw new Error('a failing test');" : end === 'is killed with SIGKILL' ? 'setInterval(() => {}, 1000);' : '',
      ].join('\n');
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const until = Date.now() + 60_000;
      while (!out.includes('\n') && child.exitCode === null && Date.now() < until) await pause(50);
      const { dir, pid } = JSON.parse(out.split('\n')[0] || 'null') ?? assert.fail(`the child said nothing: ${err}`);
      assert.ok(existsSync(dir) && mariadbds().has(pid), 'the child started its server');
      child.stdin.end('go on\n');
      if (end === 'is killed with SIGKILL') child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
      if (end === 'fails with an uncaught error') assert.notEqual(child.exitCode, 0);
      const gone = Date.now() + 60_000;
      while ((mariadbds().has(pid) || existsSync(dir)) && Date.now() < gone) await pause(100);
      assert.ok(!mariadbds().has(pid), 'its server stopped');
      assert.ok(!existsSync(dir), 'its directory was removed');
      assert.deepEqual(systemServers(), before, 'the system server keeps its process');
    });
  }
});
