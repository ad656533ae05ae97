/**
 * The MariaDB the tests use is their own: test/support/mariadb.ts starts a private server
 * per test process (its own data directory, socket and port) and removes it when the
 * process ends, however it ends. These tests check that, and that the machine's own
 * MariaDB, if one runs, keeps its process through a private server's whole life (start,
 * databases, stop and restart as the outage test does, end), without connecting to it;
 * and that test processes starting their servers at the same moment each get their own.
 * .ci/run compares the system server's pid, users and databases around the whole run.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
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

/** Runs one child process that starts its private server and says what it got. */
function startChild(env: NodeJS.ProcessEnv): { child: ReturnType<typeof spawn>; said: Promise<{ ok: boolean; err?: string; dir: string; socket: string; port: number; pid: number; answer: string }> } {
  const url = pathToFileURL(join(here, '..', 'support', 'mariadb.js')).href;
  const code = [
    `const m = await import(${JSON.stringify(url)});`,
    'try {',
    '  const s = await m.privateMariadb();',
    "  const answer = await s.client(['-N', '-e', 'SELECT CONCAT_WS(\" \", @@port, @@socket, @@datadir, @@tmpdir)']);",
    '  console.log(JSON.stringify({ ok: true, dir: s.dir, socket: s.socket, port: s.port, pid: s.pid(), answer: answer.trim() }));',
    '} catch (e) { console.log(JSON.stringify({ ok: false, err: e.message })); }',
    // It ends (and its server with it) only when the parent has looked.
    "await new Promise((r) => process.stdin.once('data', r)); process.stdin.destroy();",
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const said = new Promise<never>((resolve, reject) => {
    const look = setInterval(() => {
      if (out.includes('\n')) {
        clearInterval(look);
        resolve(JSON.parse(out.split('\n')[0]!));
      } else if (child.exitCode !== null || child.signalCode !== null) {
        clearInterval(look);
        reject(new Error(`a child ended without a word: ${err.trim()}`));
      }
    }, 50);
  });
  return { child, said };
}

describe('private MariaDB servers started at the same moment', { skip }, () => {
  test('six test processes each get a server of their own, and all are stopped and removed afterwards', { timeout: 300_000 }, async () => {
    const before = systemServers();
    // The children's temporary directory is one of this test's (TMPDIR): their servers,
    // the template and a mariadbd's default tmpdir are all there, and nothing else on the
    // machine starts servers in it. Sticky and world-writable like /tmp, so a server that
    // used it as its tmpdir could delete the canary below, as it would another's files.
    const base = mkdtempSync('/tmp/passtore-mariadb-together-');
    chmodSync(base, 0o1777);
    // A temporary table file of some other server (the machine's own, or another test
    // process's): a starting mariadbd deletes every #sql* file in its tmpdir, so private
    // servers must each have a tmpdir of their own and never use the shared one.
    const canary = join(base, '#sql-temptable-canary-1-1.MAI');
    writeFileSync(canary, 'not theirs');
    if (process.getuid?.() === 0) {
      const run = promisify(execFile);
      chownSync(canary, Number((await run('id', ['-u', 'mysql'])).stdout), Number((await run('id', ['-g', 'mysql'])).stdout));
    }
    const n = 6;
    // All from this process, so none finds a template made beforehand: each of them runs
    // mariadb-install-db at the same moment (what two test files starting together did).
    const children = Array.from({ length: n }, () => startChild({ ...process.env, TMPDIR: base }));
    try {
      const got = await Promise.all(children.map((c) => c.said));
      const failed = got.filter((g) => !g.ok).map((g) => g.err);
      assert.deepEqual(failed, [], 'every child started its server');
      assert.ok(existsSync(canary), "no server deleted another's temporary table file");
      assert.equal(new Set(got.map((g) => g.dir)).size, n, 'a directory each');
      assert.equal(new Set(got.map((g) => g.socket)).size, n, 'a socket each');
      assert.equal(new Set(got.map((g) => g.port)).size, n, 'a port each');
      assert.equal(new Set(got.map((g) => g.pid)).size, n, 'a process each');
      const servers = mariadbds();
      for (const g of got) {
        assert.ok(g.dir.startsWith(`${base}/passtore-mariadb-`), `${g.dir} is in the test's directory`);
        assert.notEqual(g.port, 3306);
        assert.equal(servers.get(g.pid), `--datadir=${join(g.dir, 'data')}`, `pid ${g.pid} serves ${g.dir}`);
        // Over its own socket it says it is the server on its own port, data and tmpdir.
        assert.equal(g.answer, `${g.port} ${g.socket} ${join(g.dir, 'data')}/ ${join(g.dir, 'tmp')}`);
        // And its TCP port reaches that same server, as the test user.
        const { stdout } = await promisify(execFile)('mariadb', ['--no-defaults', '--protocol=tcp', '-h127.0.0.1', `-P${g.port}`, '-upasstore_test', '-N', '-e', 'SELECT @@datadir'], { env: { ...process.env, MYSQL_PWD: 'passtore-test-only' } });
        assert.equal(stdout.trim(), `${join(g.dir, 'data')}/`, `port ${g.port} is ${g.dir}'s server`);
      }
      assert.deepEqual(systemServers(), before, 'the system server keeps its process');

      for (const c of children) c.child.stdin!.end('go on\n');
      await Promise.all(children.map((c) => new Promise((r) => (c.child.exitCode !== null ? r(null) : c.child.once('exit', r)))));
      const until = Date.now() + 90_000;
      const left = () => got.filter((g) => mariadbds().has(g.pid) || existsSync(g.dir));
      while (left().length > 0 && Date.now() < until) await pause(200);
      assert.deepEqual(left().map((g) => g.dir), [], 'every server stopped and its directory removed');
      assert.deepEqual(systemServers(), before, 'the system server keeps its process');
    } finally {
      // On a failure too: the children end, their reapers stop their servers, then the
      // directory goes (a failure above is what the test reports, not this clean-up's).
      for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
      const until = Date.now() + 90_000;
      while ([...mariadbds().values()].some((d) => d.includes(base)) && Date.now() < until) await pause(200);
      try {
        rmSync(base, { recursive: true, force: true, maxRetries: 5 });
      } catch (e) {
        console.log(`# left ${base}: ${(e as Error).message}`);
      }
    }
  });
});
