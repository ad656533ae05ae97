/**
 * Benchmark of how a deploy reaches a host: `putcrt HOST` over the password login (root,
 * stored password; today's way), over the deploy key (root, `sshkey install`ed), and as a
 * login user through sudo with the key (`host login --user deployer --sudo`), per host,
 * against the floor of one key login: `ssh -o BatchMode=yes root@host true` with a key;
 * and `putcrt 'host*'` to 20 hosts at the default concurrency against 20 such bare logins
 * run the same way (DEFAULT_CONCURRENCY at once).
 * Not a test: build with `npx tsc -p .`, run `node dist/test/bench/access.bench.js` as
 * root (network namespaces, mounts). About four minutes.
 *
 * Set-up through the real `passtore` shell on a pseudo-terminal inside the vault
 * namespace (test/remote/helpers.ts): HOSTS site hosts that take root passwords and have a
 * login user `deployer` in group sudo; each is enrolled (host add, add, host trust, crtreq,
 * fixture CA, getcrt) and its pair deployed once (uncounted warm-up). Each per-host figure
 * is the median of RUNS rounds over the first MODE_HOSTS hosts, each round one
 * `putcrt hostN` per host in turn, timed from Enter to the next prompt, output checked.
 * The modes' rounds are interleaved, so drift in the machine's load touches them alike.
 * In the password mode the vault holds the deploy key but the hosts do not: each login
 * offers the key first (refused, one round trip), then the password, as on a site where
 * the key is not installed everywhere yet.
 *
 * The bare logins use a key made for this benchmark's hosts only (Ed25519 like the deploy
 * key, whose private half never leaves the vault), in a 0600 file of a temporary
 * directory, with StrictHostKeyChecking=yes against a known_hosts file of the host keys
 * the vault pinned; the guard is opened by hand around them, untimed. The 20-host rounds
 * alternate: putcrt 'host*' (every host checked "with the deploy key"), 20 bare logins,
 * 20 bare logins with curve25519. OpenSSH 9.2's default key exchange is the post-quantum
 * sntrup761x25519, which costs about 70–150 ms of CPU per login here; ssh2 (passtore's
 * SSH library) negotiates curve25519-sha256, so the bare login with that exchange is the
 * floor passtore's own logins compare with.
 *
 * Figures (2 cores shared with four other sessions' tests; noisy), medians:
 *   load 11, per host, n 20 (ms): password login 368, deploy key 229, deployer + sudo
 *   with the key 393; bare `ssh -o BatchMode=yes root@host true` 328. key / password 0.62.
 *   load 16, with the two-profile mode: password 370, key 366, sudo + key 544, two
 *   profiles (five files and a reload, by key) 439, bare ssh 472; two profiles / grid
 *   pair 1.20.
 *   load 7.2/6.5/5.7 (issue 11's last run): per host password 170, key 158, sudo + key
 *   267, two profiles 213; bare ssh 208, with curve25519 136, `ip netns exec NS true` 4.
 *   20 hosts, 8 at once, n 7 (loads 3.2–7.2): putcrt 'host*' 1348 (67 per host), 20 bare
 *   ssh 3331 (167 per host), 20 bare ssh with curve25519 871 (44 per host); putcrt /
 *   bare 0.40, putcrt / curve25519 floor 1.55. key / password 0.93; two profiles / grid
 *   pair 1.35.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PtySession } from '../support/pty.js';
import { siteUnavailable, TestSite, type TestHost } from '../support/site.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { makeHome } from '../support/pty.js';
import { closeShell, cmd, createVault, enrol } from '../remote/helpers.js';
import { DEFAULT_CONCURRENCY } from '../../src/policy.js';
import { cleanups, fmt, loadAvg, pool, printMachine, runBench, stat, table, timeAsync } from './bench-kit.js';

const run = promisify(execFile);
/** Hosts of the site: all take part in the 20-host comparison, the first MODE_HOSTS in the per-host modes. */
const HOSTS = 20;
const MODE_HOSTS = 4;
const RUNS = 5;
/** Rounds of the 20-host comparison (putcrt 'host*' and 20 bare ssh, alternating). */
const WIDE_RUNS = 7;

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
  const all = site.hosts as TestHost[];
  const hosts = all.slice(0, MODE_HOSTS);
  for (const h of all) {
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
  for (const h of all) await putcrt(h, /deployed to/);

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
  // The floor: bare key logins with OpenSSH from the vault namespace, the guard opened by
  // hand around them (not timed). A key made for the benchmark's hosts only, in a 0600 file
  // of a temporary directory; the hosts' keys checked against a known_hosts file of the
  // keys the vault pinned (host trust), so each login is a full, verified one.
  const work = mkdtempSync(join(tmpdir(), 'passtore-access-ssh-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const key = join(work, 'id');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'access-bench', '-f', key]);
  chmodSync(key, 0o600);
  const knownHosts = join(work, 'known_hosts');
  writeFileSync(knownHosts, all.map((h) => `${h.address} ${h.hostKey}\n`).join(''), { mode: 0o600 });
  for (const h of all) await site.onHost(h, ['sh', '-c', 'cat >> /etc/ssh/passtore_authorized_keys/root'], readFileSync(`${key}.pub`, 'utf8'));
  const ns = (argv: string[]) => run('ip', ['netns', 'exec', site.vaultNs, ...argv]);
  const rule = (h: TestHost) => ['OUTPUT', '-o', 'vault0', '-d', h.address, '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT'];
  const withGuardOpen = async <T>(targets: TestHost[], fn: () => Promise<T>): Promise<T> => {
    await ns(['ip', 'link', 'set', 'vault0', 'up']);
    for (const h of targets) await ns(['iptables', '-I', ...rule(h)]);
    try {
      return await fn();
    } finally {
      for (const h of targets) await ns(['iptables', '-D', ...rule(h)]);
      await ns(['ip', 'link', 'set', 'vault0', 'down']);
    }
  };
  const bareSsh = (h: TestHost, extra: string[] = []) =>
    ns(['ssh', '-i', key, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', ...extra, `root@${h.address}`, 'true']);
  const h1 = hosts[0]!;
  // Beside the bare login: the same with the key exchange passtore's SSH library (ssh2)
  // negotiates (OpenSSH 9's default is the post-quantum sntrup761x25519), and the cost of
  // starting a program in the vault namespace at all (ip netns exec NS true).
  const bare: number[] = [];
  const bareCurve: number[] = [];
  const nsTrue: number[] = [];
  await withGuardOpen([h1], async () => {
    for (let i = 0; i < RUNS * 2; i++) {
      bare.push(await timeAsync(() => bareSsh(h1)));
      bareCurve.push(await timeAsync(() => bareSsh(h1, ['-o', 'KexAlgorithms=curve25519-sha256'])));
      nsTrue.push(await timeAsync(() => ns(['true'])));
    }
  });

  // putcrt to all 20 hosts at the default concurrency, by the deploy key, against 20 bare
  // ssh logins run the same way: DEFAULT_CONCURRENCY at once. Rounds alternate.
  await setMode('key');
  const wide: number[] = [];
  const wideBare: number[] = [];
  const wideCurve: number[] = [];
  const wideLoads: string[] = [];
  for (let r = 0; r < WIDE_RUNS; r++) {
    let out = '';
    wide.push(await timeAsync(async () => (out = await cmd(sh, `putcrt 'host*'`))));
    if (!out.includes(`deployed to ${HOSTS} hosts`) || /error|failed/i.test(out)) throw new Error(`putcrt 'host*': ${out.slice(-2000)}`);
    if ((out.match(/with the deploy key/g) ?? []).length !== HOSTS) throw new Error(`putcrt 'host*': not every host by the deploy key: ${out.slice(-2000)}`);
    wideBare.push(await withGuardOpen(all, () => timeAsync(() => pool(HOSTS, DEFAULT_CONCURRENCY, (i) => bareSsh(all[i]!)))));
    wideCurve.push(await withGuardOpen(all, () => timeAsync(() => pool(HOSTS, DEFAULT_CONCURRENCY, (i) => bareSsh(all[i]!, ['-o', 'KexAlgorithms=curve25519-sha256'])))));
    wideLoads.push(loadAvg('/'));
  }
  const rows = (Object.entries(times) as Array<[Mode, number[]]>).map(([mode, xs]) => {
    const s = stat(xs);
    const label = { password: 'root, password login', key: 'root, deploy key', 'sudo+key': 'deployer + sudo, deploy key', profiles: 'two profiles (5 files, reload), key' }[mode];
    return [`putcrt HOST, ${label}`, fmt(s.median), fmt(s.min), fmt(s.max), String(s.n)];
  });
  const b = stat(bare);
  rows.push(['ssh -o BatchMode=yes root@host true (key)', fmt(b.median), fmt(b.min), fmt(b.max), String(b.n)]);
  for (const [label, xs] of [['  the same, KexAlgorithms=curve25519-sha256', bareCurve], ['  ip netns exec NS true (starting a program)', nsTrue]] as const) {
    const x = stat(xs);
    rows.push([label, fmt(x.median), fmt(x.min), fmt(x.max), String(x.n)]);
  }
  console.log(`\nper host, ms (load ${loadAvg()}):`);
  table(['what', 'median', 'min', 'max', 'n'], rows, new Set([1, 2, 3, 4]));
  const w = stat(wide);
  const wb = stat(wideBare);
  const wc = stat(wideCurve);
  console.log(`\n${HOSTS} hosts, ${DEFAULT_CONCURRENCY} at once (the default concurrency), ms, rounds alternating (load per round: ${wideLoads.join(', ')}):`);
  table(
    ['what', 'median', 'min', 'max', 'n', 'per host'],
    [
      [`putcrt 'host*' (deploy key, grid pair)`, fmt(w.median), fmt(w.min), fmt(w.max), String(w.n), fmt(w.median / HOSTS)],
      [`${HOSTS} x ssh -o BatchMode=yes root@host true`, fmt(wb.median), fmt(wb.min), fmt(wb.max), String(wb.n), fmt(wb.median / HOSTS)],
      [`  the same, KexAlgorithms=curve25519-sha256`, fmt(wc.median), fmt(wc.min), fmt(wc.max), String(wc.n), fmt(wc.median / HOSTS)],
    ],
    new Set([1, 2, 3, 4, 5]),
  );
  console.log(`putcrt 'host*' / bare ssh floor (${HOSTS} hosts, same concurrency): ${(w.median / wb.median).toFixed(2)}; against the floor with ssh2's key exchange (curve25519): ${(w.median / wc.median).toFixed(2)}`);
  const ratio = stat(times.key).median / stat(times.password).median;
  console.log(`\nkey / password: ${ratio.toFixed(2)}; sudo+key / key: ${(stat(times['sudo+key']).median / stat(times.key).median).toFixed(2)}; two profiles / grid pair (both by key): ${(stat(times.profiles).median / stat(times.key).median).toFixed(2)}`);
  return 0;
}

void runBench(main);
