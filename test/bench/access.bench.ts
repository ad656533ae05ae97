/**
 * Benchmark of how a deploy reaches a host: `putcrt HOST` over the password login (root,
 * stored password; today's way), over the deploy key (root, `sshkey install`ed), and as a
 * login user through sudo with the key (`host login --user deployer --sudo`), per host,
 * against the floor of one key login: `ssh -o BatchMode=yes root@host true` with a key.
 * Not a test: build with `npx tsc -p .`, run `node dist/test/bench/access.bench.js` as
 * root (network namespaces, mounts). About a minute.
 *
 * Set-up through the real `passtore` shell on a pseudo-terminal inside the vault
 * namespace (test/remote/helpers.ts): HOSTS site hosts that take root passwords and have a
 * login user `deployer` in group sudo; each is enrolled (host add, add, host trust, crtreq,
 * fixture CA, getcrt) and its pair deployed once (uncounted warm-up). Each figure is the
 * median of RUNS rounds, each round one `putcrt hostN` per host in turn, timed from Enter
 * to the next prompt, output checked. The modes' rounds are interleaved, so drift in the
 * machine's load touches them alike. In the password mode the vault holds the deploy key
 * but the hosts do not: each login offers the key first (refused, one round trip), then
 * the password, as on a site where the key is not installed everywhere yet.
 *
 * Figures (2 cores shared with six other sessions' tests; noisy):
 *   load 11, per host, median of 20 (ms): password login 368, deploy key 229, deployer +
 *   sudo with the key 393 (one sudo per deploy: write and install in one root command);
 *   bare `ssh -o BatchMode=yes root@host true` 328. key / password 0.62.
 *   load 16, with the two-profile mode: password 370, key 366, sudo + key 544, two
 *   profiles (five files and a reload, by key) 439, bare ssh 472; two profiles / grid
 *   pair 1.20.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PtySession } from '../support/pty.js';
import { siteUnavailable, TestSite, type TestHost } from '../support/site.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { makeHome } from '../support/pty.js';
import { closeShell, cmd, createVault, enrol } from '../remote/helpers.js';
import { cleanups, fmt, loadAvg, printMachine, runBench, stat, table, timeAsync } from './bench-kit.js';

const run = promisify(execFile);
const HOSTS = 4;
const RUNS = 5;

type Mode = 'password' | 'key' | 'sudo+key' | 'profiles';

async function main(): Promise<number> {
  const why = siteUnavailable();
  if (why) {
    console.error(`cannot run: ${why}`);
    return 2;
  }
  printMachine();
  const options = Object.fromEntries(Array.from({ length: HOSTS }, (_, i) => [i + 1, { rootLogin: 'yes' as const, loginUser: 'deployer' }]));
  const site = await TestSite.start(HOSTS, options);
  cleanups.push(() => site.stop());
  const ca = await FixtureCa.create();
  cleanups.push(() => ca.remove());
  // Two profiles: five files and a reload, against the built-in grid pair.
  const home = makeHome([
    `domain = ${site.domain}`,
    ...site.networkConfig(),
    '[profile web]',
    'cert = /etc/pki/web/{fqdn}.crt 0644 root:root',
    'key = /etc/pki/web/private/{fqdn}.key 0400 root:root',
    'fullchain = /etc/pki/web/{fqdn}-fullchain.pem 0644 root:root',
    'reload = /bin/true',
    '[profile mail]',
    'cert = /etc/pki/mail/{fqdn}.crt 0644 root:root',
    'bundle = /etc/pki/mail/{fqdn}.pem 0400 root:root',
  ]);
  cleanups.push(() => home.remove());
  const reqs = mkdtempSync(join(tmpdir(), 'passtore-access-bench-'));
  cleanups.push(() => rmSync(reqs, { recursive: true, force: true }));
  const sh: PtySession = await createVault(site, home);
  cleanups.push(() => closeShell(sh));
  const hosts = site.hosts as TestHost[];
  for (const h of hosts) {
    await enrol(sh, site, h, ca, reqs);
    await cmd(sh, `add deployer@${h.name}`, h.loginUser!.password, h.loginUser!.password);
  }
  const putcrt = async (h: TestHost, expect: RegExp): Promise<number> => {
    let out = '';
    const ms = await timeAsync(async () => (out = await cmd(sh, `putcrt ${h.name}`)));
    if (!expect.test(out)) throw new Error(`putcrt ${h.name}: ${out}`);
    return ms;
  };
  // Warm-up: the first deploy of each host (no backup yet).
  for (const h of hosts) await putcrt(h, /deployed to/);

  const times: Record<Mode, number[]> = { password: [], key: [], 'sudo+key': [], profiles: [] };
  const setMode = async (mode: Mode) => {
    await cmd(sh, mode === 'profiles' ? `host profile 'host*' web mail` : `host profile 'host*' grid`);
    if (mode === 'password') {
      // The key is taken out of the vault's reach: the hosts forget it (rotate is not the point here).
      for (const h of hosts) await site.onHost(h, ['sh', '-c', 'rm -f /root/.ssh/authorized_keys']);
      await cmd(sh, `host login 'host*' --user root`);
    } else {
      // The key goes to the login user's authorized_keys: set the login first.
      await cmd(sh, mode === 'sudo+key' ? `host login 'host*' --user deployer --sudo` : `host login 'host*' --user root`);
      const out = await cmd(sh, `sshkey install 'host*'`);
      if (/error:/.test(out)) throw new Error(out);
    }
  };
  const expectFor: Record<Mode, RegExp> = { password: /deployed to \/etc\/grid-security \(the same pair was in place/, key: /deployed to \/etc\/grid-security with the deploy key/, 'sudo+key': /as deployer through sudo, with the deploy key/, profiles: /deployed 5 files of web, mail.*reloaded with the deploy key/ };
  await cmd(sh, 'sshkey create');
  for (let r = 0; r < RUNS; r++) {
    for (const mode of ['password', 'key', 'sudo+key', 'profiles'] as Mode[]) {
      await setMode(mode);
      for (const h of hosts) times[mode].push(await putcrt(h, expectFor[mode]));
    }
  }
  // The floor: one bare key login with OpenSSH from the vault namespace, guard opened by hand.
  const work = mkdtempSync(join(tmpdir(), 'passtore-access-ssh-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const key = join(work, 'id');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const h1 = hosts[0]!;
  await site.onHost(h1, ['sh', '-c', 'cat >> /etc/ssh/passtore_authorized_keys/root'], readFileSync(`${key}.pub`, 'utf8'));
  const ns = (argv: string[]) => run('ip', ['netns', 'exec', site.vaultNs, ...argv]);
  await ns(['ip', 'link', 'set', 'vault0', 'up']);
  await ns(['iptables', '-I', 'OUTPUT', '-o', 'vault0', '-d', h1.address, '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']);
  const bare: number[] = [];
  try {
    for (let i = 0; i < RUNS * 2; i++) {
      bare.push(await timeAsync(() => ns(['ssh', '-i', key, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', `root@${h1.address}`, 'true'])));
    }
  } finally {
    await ns(['iptables', '-D', 'OUTPUT', '-o', 'vault0', '-d', h1.address, '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']);
    await ns(['ip', 'link', 'set', 'vault0', 'down']);
  }
  const rows = (Object.entries(times) as Array<[Mode, number[]]>).map(([mode, xs]) => {
    const s = stat(xs);
    const label = { password: 'root, password login', key: 'root, deploy key', 'sudo+key': 'deployer + sudo, deploy key', profiles: 'two profiles (5 files, reload), key' }[mode];
    return [`putcrt HOST, ${label}`, fmt(s.median), fmt(s.min), fmt(s.max), String(s.n)];
  });
  const b = stat(bare);
  rows.push(['ssh -o BatchMode=yes root@host true (key)', fmt(b.median), fmt(b.min), fmt(b.max), String(b.n)]);
  console.log(`\nper host, ms (load ${loadAvg()}):`);
  table(['what', 'median', 'min', 'max', 'n'], rows, new Set([1, 2, 3, 4]));
  const ratio = stat(times.key).median / stat(times.password).median;
  console.log(`\nkey / password: ${ratio.toFixed(2)}; sudo+key / key: ${(stat(times['sudo+key']).median / stat(times.key).median).toFixed(2)}; two profiles / grid pair (both by key): ${(stat(times.profiles).median / stat(times.key).median).toFixed(2)}`);
  return 0;
}

void runBench(main);
