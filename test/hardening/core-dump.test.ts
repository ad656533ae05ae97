/**
 * No core dump holds a secret (issue 13, item 3): an unlocked `passtore` shell and a
 * `passtore-cron run` holding a decrypted password are sent SIGABRT after their parent
 * shell raised the core size limit to unlimited. The kernel's core_pattern here writes a
 * file (`core`, in the working directory); a control process holding the canary in the
 * same conditions shows that such a file is written and that the search finds the canary
 * in it, so the absence of one for passtore means something.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeHome, pause, PtySession, type Home } from '../support/pty.js';
import { CRON_BIN, createCronVault, writeConfig, type CronVault } from '../cron/helpers.js';
import { PASSPHRASE } from '../support/scripted.js';
import { Secret } from '../../src/secret.js';
import { openStore } from '../../src/storage/open.js';
import { Vault } from '../../src/vault/vault.js';

const pattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
const skip = pattern.startsWith('|') ? `core_pattern pipes to a program (${pattern}): core files cannot be looked at here` : false;
if (skip && process.env.CI === 'true') throw new Error(`CI: ${skip}`);
if (skip) console.log(`# skipped: ${skip}`);

/** Prefix that raises the core limit, then execs the program (the environment passtore must overrule). */
const UNLIMITED = ['sh', '-c', 'ulimit -c unlimited && exec "$0" "$@"'];

/** Every regular file below `dir`. */
function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...files(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

const cores = (dir: string) => files(dir).filter((f) => /(^|\/)core(\.\d+)?$/.test(f));
const holding = (dir: string, canary: Buffer) => files(dir).filter((f) => readFileSync(f).includes(canary));

function waitExit(child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
}

describe('core dumps', { skip }, () => {
  test('control: a plain node process holding the canary leaves a core that holds it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'passtore-core-'));
    try {
      const canary = `core-canary-${randomBytes(8).toString('hex')}`;
      const child = spawn(UNLIMITED[0]!, [...UNLIMITED.slice(1), process.execPath, '-e', 'let b=[];process.stdin.on("data",(d)=>{b.push(Buffer.from(d));process.stdout.write("ready\\n")});setInterval(()=>{},1000)'], { cwd: dir, stdio: ['pipe', 'pipe', 'inherit'] });
      child.stdin!.write(canary);
      await new Promise((r) => child.stdout!.once('data', r));
      const exited = waitExit(child);
      child.kill('SIGABRT');
      assert.equal((await exited).signal, 'SIGABRT');
      assert.equal(cores(dir).length, 1, `a core file in ${dir}`);
      assert.ok(holding(dir, Buffer.from(canary)).length > 0, 'the control core holds the canary');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an unlocked passtore shell sent SIGABRT leaves no core', async () => {
    const home: Home = makeHome(['domain = example.org']);
    const canary = `shell-canary-${randomBytes(8).toString('hex')}`;
    const sh = new PtySession([], home.env, { prefix: UNLIMITED });
    try {
      await sh.createVault(PASSPHRASE);
      await sh.command('host add h1 --address 127.0.0.1');
      await sh.command('add h1', canary, canary);
      const limits = readFileSync(`/proc/${sh.pid}/limits`, 'utf8');
      assert.match(limits, /^Max core file size\s+0\s+0\s/m, 'the shell lowered its own core limit');
      assert.equal(readFileSync(`/proc/${sh.pid}/coredump_filter`, 'utf8').trim(), '00000000');
      process.kill(sh.pid, 'SIGABRT');
      await sh.exited();
      assert.deepEqual(cores(home.dir), [], 'no core file');
      assert.deepEqual(holding(home.dir, Buffer.from(canary)), [], 'no file holds the canary');
    } finally {
      sh.kill();
      home.remove();
    }
  });

  describe('passtore-cron run', () => {
    let cv: CronVault;
    let server: Server;
    let port = 0;
    const sockets: Socket[] = [];
    const canary = `cron-canary-${randomBytes(8).toString('hex')}`;

    before(async () => {
      // An "SSH server" that accepts and never answers: reconcile holds the decrypted
      // pending password while it waits for the banner.
      server = createServer((s) => sockets.push(s));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as { port: number }).port;
      const pub = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
      const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), pub]);
      cv = await createCronVault({ domain: 'example.org', hosts: [{ name: 'h1', address: '127.0.0.1', port, rootPassword: 'old root password', hostKey: `ssh-ed25519 ${blob.toString('base64')}` }] });
      writeConfig(cv);
      // A password change left pending (as an interrupted update --remote leaves it).
      const store = await openStore(`sqlite:${cv.dbPath}`);
      try {
        const vault = (await Vault.load(store))!;
        await vault.unlockWithPassphrase('alice', Secret.fromString(PASSPHRASE));
        const [entry] = await store.findEntries('h1.example.org', 'root', 'ssh');
        const version = entry!.version + 1;
        await vault.transaction((tx) => tx.setPending(entry!.id, vault.sealPassword({ fqdn: entry!.fqdn, user: 'root', service: 'ssh', version }, Secret.fromString(canary)), version, new Date().toISOString()));
        vault.lock();
      } finally {
        await store.close();
      }
    });

    after(() => {
      for (const s of sockets) s.destroy();
      server?.close();
      if (cv) rmSync(cv.dir, { recursive: true, force: true });
    });

    test('sent SIGABRT while it holds a decrypted password, it leaves no core', async () => {
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: cv.dir, XDG_DATA_HOME: cv.dataHome, PASSTORE_SCRYPT_LOG_N: '14', PASSTORE_TEST_SWITCHES: 'for-tests-only', LANG: 'C.UTF-8' };
      const child = spawn(UNLIMITED[0]!, [...UNLIMITED.slice(1), process.execPath, CRON_BIN, '--config', cv.configFile, 'run'], { cwd: cv.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      const exited = waitExit(child);
      const deadline = Date.now() + 20_000;
      while (sockets.length === 0 && Date.now() < deadline && child.exitCode === null) await pause(50);
      assert.equal(sockets.length, 1, `passtore-cron connected to the host with the pending password; output:\n${output}`);
      assert.match(readFileSync(`/proc/${child.pid}/limits`, 'utf8'), /^Max core file size\s+0\s+0\s/m);
      child.kill('SIGABRT');
      assert.equal((await exited).signal, 'SIGABRT', output);
      assert.deepEqual(cores(cv.dir), [], 'no core file');
      assert.deepEqual(holding(cv.dir, Buffer.from(canary)), [], 'no file holds the canary');
    });
  });
});
