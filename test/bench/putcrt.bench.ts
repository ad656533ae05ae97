/**
 * Benchmark of `putcrt` over a site of 20 real sshd hosts: the default concurrency
 * (DEFAULT_CONCURRENCY hosts at once) against one host at a time (`--jobs 1`), and the per-host cost against a
 * bare `scp` of the same two files to one host. Not a test: build with `npx tsc -p .`, run
 * `node dist/test/bench/putcrt.bench.js` as root (network namespaces, mounts). ~3–4 min.
 *
 * Set-up, all through the real `passtore` binary on a pseudo-terminal (node-pty) running
 * inside the vault namespace (`ip netns exec NS`), with the test site's [network] guard
 * commands in its config:
 *   - the vault is created at the first start (confirm, passphrase twice; scrypt 2^14);
 *   - the 20 hosts are added by `source FILE` (host add hostN --address IP);
 *   - each host's root password is stored by `add hostN`, typed at the no-echo prompts
 *     (source refuses commands that ask for secrets);
 *   - each host is pinned by `host trust hostN`, answering y;
 *   - `crtreq 'host*' --out DIR` makes a key (key_type default, rsa-2048) and request per
 *     host; the fixture CA (test/x509/fixture-ca.ts, openssl) signs each request; the
 *     certificates are stored by `source FILE` of one `getcrt FILE` per host.
 *
 * Figures (each run typed at the prompt, timed from Enter to the next prompt, output
 * checked for "deployed to 20 hosts"; runs of both kinds interleaved, after one uncounted
 * warm-up):
 *   1. putcrt 'host*'             (default concurrency)
 *   2. putcrt 'host*' --jobs 1    (one host at a time)
 *      Target: 1 at least 8× faster than 2 (ratio = speed-up / 8).
 *   3. per host one at a time = 2 / 20, against
 *   4. `scp -i KEY` of the same two files (read back from host1 after a deploy) to host1,
 *      run inside the vault namespace with key authentication (no sshpass here), the
 *      guard opened by hand around the scp runs; no target given, ratio for information.
 * Guard cost (issue 14: the guard's share of the wall, target < 10%): the same `putcrt
 * 'host*'` with the guard, against a second shell on the same vault whose config has no
 * [network] section, while the benchmark holds the vault namespace open itself (link up and
 * one ACCEPT rule per host's address and port 22, the site's own commands as argument
 * vectors, opened before and closed after each timed run, untimed); the two kinds
 * alternate, each run after both files on every host were changed (so every run replaces
 * and backs up both), one uncounted warm-up of each, then RUNS.guardCost pairs. Printed as
 * "GUARD COST: T_guard − T_none = X ms = Y% of the wall" (median of the pairs'
 * differences over the guarded median), beside "GUARD ACTIVITY", the union of the
 * intervals during which any guard command ran in one traced run (it overlaps the other
 * hosts' work, so it is not what the guard adds). After every run the vault namespace's
 * firewall is checked to be as the site built it (link down, policies DROP, its own rules
 * only), and again before the site stops.
 * Diagnostics, not counted:
 *   - one traced run of each kind (putcrt-trace.js loaded into the binary by
 *     NODE_OPTIONS) says where a host's time goes: guard commands, SSH connect, each
 *     exec request, SFTP;
 *   - SSH sessions left open on the hosts after each phase;
 *   - where the CPU goes in the counted runs (/proc): the whole machine's busy time, and
 *     passtore's own (its process, and its children: the guard's commands). With 2 cores
 *     shared by passtore and the 20 hosts (their sshd, shells and coreutils), concurrency
 *     can only overlap what is not CPU: the speed-up is at most cores × (wall ÷ CPU time)
 *     of the one-at-a-time run, printed beside the measured one.
 * The test hosts have a /root of their own with /etc/skel's files (test/support/site.ts),
 * as a stock server: sshd's bash sources ~/.bashrc for each remote command.
 *
 * $BENCH_GUARD picks the guard's mechanism: serial (default: the site's one command at a
 * time), parallel (`parallel = yes` with iptables -w), batch (iptables-restore
 * --noflush) or batch-parallel (the same with `parallel = yes`: up and down beside the batches); PASSTORE_TEST_RELAY_MS=20 puts the site's delaying relay in the hosts'
 * path (a 20 ms round trip); BENCH_ANSIBLE=0 skips the Ansible baseline.
 *
 * $BENCH_AUTH picks how passtore logs in to the hosts: password (default; the figures
 * recorded before it meant this) or key: after the set-up and before any timed run, the
 * shell runs `sshkey create` and `sshkey install 'host*'` (over the password login), and
 * from then on every putcrt result line must say "with the deploy key" (each run checks
 * all 20; in password mode none may). A key login spares each host the password hash
 * (yescrypt) a password login costs its sshd, as on sites that keep OpenSSH's default
 * PermitRootLogin prohibit-password. The Ansible baseline logs in the same way: by
 * password through sshpass, or in key mode with an Ed25519 key of its own that the
 * benchmark makes and appends to each host's root authorized_keys.
 *
 * The site is stopped at the end, on failure and on Ctrl-C, with any process left in
 * its namespaces; what is left afterwards (nothing expected) is printed.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeHome, pause, plain, PtySession, type Home } from '../support/pty.js';
import { siteUnavailable, TestSite, type TestHost } from '../support/site.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { DEFAULT_CONCURRENCY } from '../../src/policy.js';
import { cleanups, commandOutput, execFileP, fmt, fsType, loadAvg, netnsList, noteLoad, onHost, printLoadAtStart, printLoads, printMachine, readTrace, results, runBench, sha256, sshdProcesses, sshVersion, stat, table, tempDir, timeAsync, TRACE_PICK, type Stat } from './bench-kit.js';
import type { TraceEvent } from './putcrt-trace.js';

const HOSTS = 20;
const PASSPHRASE = 'bench passphrase 5172';
const RUNS = { parallel: 4, serial: 4, scp: 7, netnsExec: 7, guardCost: 11 };
const TARGET_SPEEDUP = 8; // issue 14: default concurrency against --jobs 1 with the 20 ms relay
const CRT_PATH = '/etc/grid-security';
const TRACER = fileURLToPath(new URL('./putcrt-trace.js', import.meta.url));

const { checks, record, print: printResults } = results();

/** The guard's mechanism ($BENCH_GUARD): serial (the site's default), parallel, or batch. */
const GUARD = process.env.BENCH_GUARD ?? 'serial';

/** How passtore logs in to the hosts ($BENCH_AUTH): the stored root password, or the vault's deploy key. */
const AUTH = process.env.BENCH_AUTH ?? 'password';
if (AUTH !== 'password' && AUTH !== 'key') throw new Error(`BENCH_AUTH=${AUTH}: expected password or key`);
const AUTH_LABEL = AUTH === 'key' ? 'deploy-key login' : 'password login';

/** The [network] section for each mechanism, on the site's vault namespace. */
function guardConfig(site: TestSite, mechanism: string): string[] {
  const rule = '-o vault0 -d {address} -p tcp --dport {port} -j ACCEPT';
  const link = ['up = ip link set vault0 up', 'down = ip link set vault0 down'];
  if (mechanism === 'serial') return site.networkConfig();
  if (mechanism === 'parallel') return ['[network]', ...link, `allow = iptables -w -I OUTPUT ${rule}`, `revoke = iptables -w -D OUTPUT ${rule}`, 'parallel = yes'];
  const batch = ['batch = iptables-restore -w --noflush', 'batch_begin = *filter', `batch_allow = "-I OUTPUT ${rule}"`, `batch_revoke = "-D OUTPUT ${rule}"`, 'batch_end = COMMIT'];
  if (mechanism === 'batch') return ['[network]', ...link, ...batch];
  // iptables-restore -w and ip link are safe to run at once: up and down beside the batches.
  if (mechanism === 'batch-parallel') return ['[network]', ...link, ...batch, 'parallel = yes'];
  throw new Error(`BENCH_GUARD=${mechanism}: expected serial, parallel, batch or batch-parallel`);
}

// ---------------------------------------------------------------------------------------
// Driving the shell

/** Types `text` (answering prompts with `answers`) and waits for the next prompt. */
async function shell(sh: PtySession, text: string, options: { answers?: string[]; timeoutMs?: number } = {}): Promise<{ out: string; ms: number }> {
  const start = sh.mark;
  const t0 = performance.now();
  sh.line(text);
  let from = start + text.length;
  for (const a of options.answers ?? []) {
    await sh.expect(/(: |\[y\/N\] )$/, { from, timeoutMs: options.timeoutMs });
    await pause(30);
    from = sh.mark;
    sh.line(a);
  }
  const end = await sh.expect(/\npasstore> $/, { from: start + text.length, timeoutMs: options.timeoutMs ?? 10_000 });
  const ms = performance.now() - t0;
  return { out: plain(sh.transcript).slice(start, end), ms };
}

/** The binary on a pseudo-terminal inside the vault namespace; exited (or killed) at the end. */
function vaultShell(env: Record<string, string>, vaultNs: string): PtySession {
  const sh = new PtySession([], env, { prefix: ['ip', 'netns', 'exec', vaultNs] });
  cleanups.push(async () => {
    if (sh.exitCode === undefined) {
      sh.line('exit');
      await sh.exited(5000).catch(() => sh.kill());
    }
  });
  return sh;
}

/** Starts the binary on the existing vault and unlocks it. */
async function unlock(sh: PtySession): Promise<void> {
  await sh.expect('Passphrase for bench: ', { timeoutMs: 30_000 });
  await pause(30);
  sh.line(PASSPHRASE);
  await sh.expect(/passtore> $/, { timeoutMs: 30_000 });
}

function expectOut(what: string, out: string, want: RegExp | string): void {
  const ok = typeof want === 'string' ? out.includes(want) : want.test(out);
  if (!ok) throw new Error(`${what}: expected ${String(want)}; output:\n${out.slice(-2000)}`);
}

async function inNs(ns: string, argv: string[]): Promise<string> {
  const { stdout } = await execFileP('ip', ['netns', 'exec', ns, ...argv]);
  return stdout;
}

/** The vault namespace's whole firewall (`iptables -S`) as the site left it, before any run. */
let closedFirewall: string | undefined;

/** Throws unless the vault namespace is as the site built it: link down, the same policies (DROP) and rules. */
async function firewallClosed(site: TestSite, when: string): Promise<string> {
  const now = await inNs(site.vaultNs, ['iptables', '-S']);
  const { linkUp } = await site.vaultState();
  const policies = now.split('\n').filter((l) => l.startsWith('-P ')).join(', ');
  if (linkUp || now !== closedFirewall || !/-P OUTPUT DROP/.test(now)) {
    throw new Error(`${when}: the vault namespace is not closed: link ${linkUp ? 'up' : 'down'}, firewall now:\n${now}as built:\n${closedFirewall}`);
  }
  return `link down, ${policies}, ${now.split('\n').filter((l) => l.startsWith('-A ')).length} rules (the site's own: loopback and replies)`;
}

// ---------------------------------------------------------------------------------------
// Where the CPU goes: /proc, around each counted run

const CLK_TCK = Number(commandOutput(['getconf', 'CLK_TCK'])) || 100;

interface CpuSample {
  machine: number;
  own: number;
  children: number;
  /** The test hosts' sshd listeners with every child they reaped (sessions, shells, the deploy script's processes). */
  hosts: number;
  /** The delaying relay's process (0 without it). */
  relay: number;
}

/** What a run spent, in ms: wall, the machine's busy CPU, passtore's and its children's. */
interface CpuSpent extends CpuSample {
  wall: number;
}

/** A process's CPU time (ms) with that of the children it has reaped; 0 when it is gone. */
function treeCpu(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const p = st.slice(st.lastIndexOf(')') + 2).split(' ').map(Number);
    return (p[11]! + p[12]! + p[13]! + p[14]!) * (1000 / CLK_TCK);
  } catch {
    return 0;
  }
}

/** The site whose hosts' and relay's CPU time cpuNow reads (set once the site is up). */
let cpuSite: TestSite | undefined;

/** Busy CPU time so far (ms): the machine's (/proc/stat, all but idle, iowait and steal) and a process's. */
function cpuNow(pid: number): CpuSample {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq] = f as [number, number, number, number, number, number, number];
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const p = st.slice(st.lastIndexOf(')') + 2).split(' ').map(Number);
  // After the command name: state is field 3; utime, stime, cutime, cstime are 14–17.
  const tick = 1000 / CLK_TCK;
  const hosts = (cpuSite?.hosts ?? []).reduce((a, h) => a + treeCpu(h.sshd?.pid), 0);
  return { machine: (user + nice + system + irq + softirq) * tick, own: (p[11]! + p[12]!) * tick, children: (p[13]! + p[14]!) * tick, hosts, relay: treeCpu(cpuSite?.relay?.pid) };
}

function cpuSince(before: CpuSample, pid: number, wall: number): CpuSpent {
  const now = cpuNow(pid);
  return { wall, machine: now.machine - before.machine, own: now.own - before.own, children: now.children - before.children, hosts: now.hosts - before.hosts, relay: now.relay - before.relay };
}

const medianOf = (xs: CpuSpent[], k: keyof CpuSpent) => stat(xs.map((x) => x[k])).median;

// ---------------------------------------------------------------------------------------
// Ansible baseline

/**
 * Deploys each host's pair (read back from the host after putcrt) with Debian's
 * ansible-core: `copy` with owner root, mode 0644 / 0400 and `backup: yes` (its checksum
 * check is the read-back), pipelining on, forks 8 and 20, runs alternating between forks
 * and between two versions of the files (one and two more trailing newlines), so
 * every run changes both files on every host. The guard is opened by hand to all 20 hosts
 * around the runs (Ansible has none), so its time is not Ansible's. Skipped with the
 * reason when ansible-playbook or sshpass is missing (apt-get install ansible-core
 * sshpass); BENCH_ANSIBLE=0 skips it.
 */
async function ansibleBaseline(site: TestSite, work: string, putcrtRun: () => Promise<number>): Promise<{ f8: Stat; f20: Stat; putcrt: Stat } | undefined> {
  console.log('\n== Ansible baseline');
  // Like with like: with BENCH_AUTH=key Ansible logs in with a key of its own (made here,
  // appended to each host's root authorized_keys), with a password through sshpass otherwise.
  for (const tool of ['/usr/bin/ansible-playbook', ...(AUTH === 'key' ? ['/usr/bin/ssh-keygen'] : ['/usr/bin/sshpass'])]) {
    if (!existsSync(tool)) {
      console.log(`  skipped: ${tool} is missing (apt-get install ansible-core sshpass)`);
      return undefined;
    }
  }
  const dir = join(work, 'ansible');
  for (const variant of ['a', 'b']) {
    for (const h of site.hosts) {
      const d = join(dir, variant, h.name);
      mkdirSync(d, { recursive: true, mode: 0o700 });
      const extra = variant === 'a' ? '\n' : '\n\n'; // both differ from what putcrt left
      writeFileSync(join(d, 'hostcert.pem'), (await onHost(h, ['cat', `${CRT_PATH}/hostcert.pem`])) + extra, { mode: 0o644 });
      writeFileSync(join(d, 'hostkey.pem'), (await onHost(h, ['cat', `${CRT_PATH}/hostkey.pem`])) + extra, { mode: 0o400 });
    }
  }
  const keyFile = join(dir, 'id_ed25519');
  if (AUTH === 'key') {
    await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ansible-bench', '-f', keyFile]);
    const line = readFileSync(`${keyFile}.pub`, 'utf8').trim();
    for (const h of site.hosts) await onHost(h, ['sh', '-c', 'mkdir -p -m 0700 /root/.ssh && printf "%s\\n" "$1" >> /root/.ssh/authorized_keys', 'sh', line]);
  }
  const login = (h: TestHost) => (AUTH === 'key' ? `ansible_ssh_private_key_file=${keyFile}` : `ansible_password=${h.rootPassword}`);
  const inventory = join(dir, 'hosts.ini');
  writeFileSync(
    inventory,
    ['[site]', ...site.hosts.map((h) => `${h.name} ansible_host=${h.address} ${login(h)}`), '', '[site:vars]', 'ansible_user=root', 'ansible_python_interpreter=/usr/bin/python3', ''].join('\n'),
    { mode: 0o600 },
  );
  const playbook = join(dir, 'deploy.yml');
  const copy = (file: string, mode: string) => `    - ansible.builtin.copy: { src: "{{ src }}/{{ inventory_hostname }}/${file}", dest: "${CRT_PATH}/${file}", owner: root, group: root, mode: "${mode}", backup: true }`;
  writeFileSync(playbook, ['- hosts: site', '  gather_facts: false', '  tasks:', copy('hostcert.pem', '0644'), copy('hostkey.pem', '0400'), ''].join('\n'));
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    ANSIBLE_PIPELINING: 'True',
    ANSIBLE_HOST_KEY_CHECKING: 'False',
    ANSIBLE_LOCAL_TEMP: join(dir, 'tmp'),
    ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, 'cp'),
    ANSIBLE_NOCOLOR: '1',
  };
  // The guard, by hand around each Ansible run (untimed): up and one rule per host, closed
  // again before the putcrt runs between them, which open it themselves.
  const rule = (h: TestHost) => ['-o', 'vault0', '-d', h.address, '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT'];
  const opened = new Set<TestHost>();
  const openByHand = async () => {
    await inNs(site.vaultNs, ['ip', 'link', 'set', 'vault0', 'up']);
    for (const h of site.hosts) {
      opened.add(h);
      await inNs(site.vaultNs, ['iptables', '-I', 'OUTPUT', ...rule(h)]);
    }
  };
  const closeByHand = async () => {
    for (const h of [...opened]) {
      await inNs(site.vaultNs, ['iptables', '-D', 'OUTPUT', ...rule(h)]).catch(() => undefined);
      opened.delete(h);
    }
    await inNs(site.vaultNs, ['ip', 'link', 'set', 'vault0', 'down']).catch(() => undefined);
  };
  const times: Record<8 | 20, number[]> = { 8: [], 20: [] };
  const between: number[] = [];
  let variant: 'a' | 'b' = 'b';
  const run = async (forks: 8 | 20, counted: boolean) => {
    variant = variant === 'a' ? 'b' : 'a';
    const argv = ['ip', 'netns', 'exec', site.vaultNs, 'ansible-playbook', '-i', inventory, '-f', String(forks), '-e', `src=${join(dir, variant)}`, playbook];
    let out = '';
    await openByHand();
    const ms = await timeAsync(async () => {
      try {
        const r = await execFileP(argv[0]!, argv.slice(1), { env, maxBuffer: 16 * 1024 * 1024 });
        out = r.stdout;
      } catch (e) {
        // Its report says which host and task failed: keep it in the error.
        const err = e as { stdout?: string; stderr?: string; message: string };
        throw new Error(`ansible-playbook -f ${forks} failed: ${err.message.split('\n')[0]}\n${(err.stdout ?? '').slice(-3000)}${(err.stderr ?? '').slice(-1000)}`);
      }
    }).finally(closeByHand);
    const changed = [...out.matchAll(/ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0/g)].filter((m) => m[1] === '2').length;
    if (changed !== HOSTS) throw new Error(`ansible-playbook -f ${forks}: ${changed} of ${HOSTS} hosts changed both files:\n${out.slice(-2000)}`);
    if (counted) times[forks].push(ms);
    console.log(`  forks ${forks}, files ${variant}: ${fmt(ms)} ms${counted ? '' : ' (warm-up, not counted)'}   (load ${loadAvg()})`);
  };
  // A default putcrt after each Ansible run, so that drift in the machine's load hits both
  // alike: it puts the vault's pair back over the files Ansible wrote (both changed, backed up).
  const putcrtBetween = async (counted: boolean) => {
    const ms = await putcrtRun();
    if (counted) between.push(ms);
    console.log(`  putcrt default: ${fmt(ms)} ms${counted ? '' : ' (warm-up, not counted)'}   (load ${loadAvg()})`);
  };
  try {
    await run(8, false);
    await putcrtBetween(false);
    for (let i = 0; i < 3; i++) {
      for (const forks of i % 2 ? ([20, 8] as const) : ([8, 20] as const)) {
        await run(forks, true);
        await putcrtBetween(true);
      }
    }
    // The last word is Ansible's, so that its read-back below is checked.
    await run(8, false);
  } finally {
    await closeByHand();
  }
  const h1 = site.hosts[0]!;
  const onH1 = await onHost(h1, ['sha256sum', `${CRT_PATH}/hostcert.pem`, `${CRT_PATH}/hostkey.pem`]);
  if (!onH1.includes(sha256(readFileSync(join(dir, variant, h1.name, 'hostkey.pem'))))) throw new Error('ansible: host1\'s key does not read back as the last run\'s');
  const f8 = record(`5. Ansible copy (backup, pipelining), forks 8, ${HOSTS} hosts, ${AUTH === 'key' ? 'key' : 'password'} login`, times[8], 'ansible-playbook in the vault namespace, guard opened by hand; every run changes both files on every host');
  const f20 = record(`   5a. the same, forks 20`, times[20], 'same');
  const pc = record(`   5b. putcrt 'host*' (default), one after each Ansible run, ${AUTH_LABEL}`, between, 'the vault\'s pair put back over what Ansible wrote: both files changed on every host');
  console.log(`  ANSIBLE RATIO: forks 8 ${fmt(f8.median)} ms, forks 20 ${fmt(f20.median)} ms against putcrt default ${fmt(pc.median)} ms (the runs between them): ${(f8.median / pc.median).toFixed(1)}× and ${(f20.median / pc.median).toFixed(1)}× (target ≥ 20×)`);
  return { f8, f20, putcrt: pc };
}

// ---------------------------------------------------------------------------------------
// Where the time goes: the traced runs (putcrt-trace.js inside the binary)

interface Phase {
  label: string;
  pick: (e: TraceEvent) => boolean;
}

const PHASES: Phase[] = [
  { label: 'guard: ip link set vault0 up|down', pick: TRACE_PICK.guardIp },
  { label: 'guard: iptables -I|-D OUTPUT (allow, revoke)', pick: TRACE_PICK.guardIptables },
  { label: `ssh connect (TCP, kex, ${AUTH === 'key' ? 'deploy-key' : 'password'} auth)`, pick: TRACE_PICK.connect },
  { label: 'sftp subsystem open (none since the one-command deploy)', pick: TRACE_PICK.sftp },
  { label: 'exec deploy script (files on stdin, chown, cp -p, sync FILES, mv, sync ., sha256sum, stat)', pick: TRACE_PICK.install },
  { label: 'connection lifetime (connect → close)', pick: TRACE_PICK.session },
];

/** Most intervals open at once among `spans` ([start, end]). */
function maxOverlap(spans: Array<[number, number]>): number {
  const edges = spans.flatMap(([a, b]) => [[a, 1], [b, -1]] as Array<[number, number]>).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let open = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (open += d));
  return most;
}

/** Milliseconds covered by at least one of `spans`. */
function unionMs(spans: Array<[number, number]>): number {
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of [...spans].sort((x, y) => x[0] - y[0])) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

interface TracedRun {
  wall: number;
  events: TraceEvent[];
}

function breakdown(serial: TracedRun, parallel: TracedRun): string[] {
  const notes: string[] = [];
  const body: string[][] = [];
  const sum = (xs: TraceEvent[]) => xs.reduce((a, e) => a + e.ms, 0);
  let serialAccounted = 0;
  for (const p of PHASES) {
    const s = serial.events.filter(p.pick);
    const c = parallel.events.filter(p.pick);
    const isLifetime = p.label.startsWith('connection lifetime');
    // One lifetime per host; a connection whose 'close' came after the prompt is missing.
    const perHost = isLifetime ? (s.length ? sum(s) / s.length : 0) : sum(s) / HOSTS;
    if (p.label.startsWith('guard') || isLifetime) serialAccounted += perHost * HOSTS;
    body.push([
      p.label,
      String(s.length),
      fmt(perHost),
      s.length ? fmt(sum(s) / s.length) : '—',
      c.length ? fmt(sum(c) / c.length) : '—',
      c.length ? fmt(sum(c)) : '—',
    ]);
  }
  const rest = serial.wall - serialAccounted;
  body.push(['rest: passtore in-process (store, pair check, audit, output)', '', fmt(rest / HOSTS), '', '', '']);
  body.push([`wall (traced run)`, '', fmt(serial.wall / HOSTS), '', '', fmt(parallel.wall)]);
  table(['phase', 'events (jobs 1)', '--jobs 1 ms/host', '--jobs 1 mean ms', 'default mean ms', 'default sum ms'], body, new Set([1, 2, 3, 4, 5]));

  const guardPar = parallel.events.filter((e) => e.ev === 'guard');
  const guardSpans = guardPar.map((e) => [e.t - e.ms, e.t] as [number, number]);
  const sessions = parallel.events.filter((e) => e.ev === 'session').map((e) => [e.t - e.ms, e.t] as [number, number]);
  const ups = guardPar.filter((e) => e.what!.startsWith('ip ')).length;
  const busy = unionMs(guardSpans);
  notes.push(
    `default concurrency (guard ${GUARD}): ${guardPar.length} guard commands (${ups} of them ip link up/down), at most ${maxOverlap(guardSpans)} at once, ${fmt(sum(guardPar))} ms in all; a guard command was running during ${fmt(busy)} ms = ${((100 * busy) / parallel.wall).toFixed(0)}% of the ${fmt(parallel.wall)} ms wall (the union of guard activity: it overlaps other hosts' work, so it is not what the guard adds to the wall; see GUARD COST); at most ${maxOverlap(sessions)} SSH connections were open at once (limit ${DEFAULT_CONCURRENCY})`,
  );
  const t0 = Math.min(...parallel.events.map((e) => e.t - e.ms));
  notes.push(
    `guard commands of the default run in order (start after the first event, duration; a batch's targets in parentheses): ${[...guardPar]
      .sort((a, b) => a.t - a.ms - (b.t - b.ms))
      .map((e) => `${e.what!.startsWith('ip ') ? e.what!.split(' ').slice(-1)[0] : (/\((\d+) targets\)/.exec(e.what!)?.[1] ?? '?') + ' targets'} @${fmt(e.t - e.ms - t0)} ${fmt(e.ms)} ms`)
      .join(', ')}`,
  );
  console.log(`GUARD ACTIVITY (union of the intervals any guard command ran, one traced run; not the cost): ${GUARD}${process.env.PASSTORE_TEST_RELAY_MS ? `, relay ${process.env.PASSTORE_TEST_RELAY_MS} ms` : ''}: ${((100 * busy) / parallel.wall).toFixed(1)}% of the default-concurrency wall (${fmt(busy)} of ${fmt(parallel.wall)} ms), ${guardPar.length} commands`);
  const closedS = serial.events.filter((e) => e.ev === 'session').length;
  const closedP = parallel.events.filter((e) => e.ev === 'session').length;
  notes.push(`connections whose 'close' event came before putcrt returned to the prompt: ${closedS} of ${HOSTS} (--jobs 1), ${closedP} of ${HOSTS} (default); SshConnection.close() does not wait for it, and the guard revokes at once`);
  const connS = serial.events.filter((e) => e.ev === 'connect');
  const connP = parallel.events.filter((e) => e.ev === 'connect');
  if (connS.length && connP.length) notes.push(`ssh connect: ${fmt(sum(connS) / connS.length)} ms alone, ${fmt(sum(connP) / connP.length)} ms with up to ${DEFAULT_CONCURRENCY} at once (the 20 sshd, their ${AUTH === 'key' ? 'key checks' : 'password hashing'} and passtore's one thread share ${os.availableParallelism()} cores)`);
  return notes;
}

// ---------------------------------------------------------------------------------------

function machineInfo(): void {
  printMachine();
  console.log(`node ${process.version}, ${sshVersion()} (client and sshd), ${commandOutput(['openssl', 'version'])}, ${commandOutput(['iptables', '--version'])}`);
  console.log(`tmp: ${os.tmpdir()} (${fsType(os.tmpdir())}); hosts' /etc: overlay over /etc (${fsType('/etc')})`);
  printLoadAtStart();
}

/** Every process in the site's namespaces but the sshd listeners (which site.stop ends). */
async function sitePids(site: TestSite): Promise<Array<{ pid: number; cmd: string; host: string }>> {
  const out: Array<{ pid: number; cmd: string; host: string }> = [];
  const listeners = new Set(site.hosts.map((h) => h.sshd?.pid));
  for (const [ns, host] of [...site.hosts.map((h) => [h.ns, h.name] as const), [site.vaultNs, 'vault'] as const]) {
    let pids = '';
    try {
      pids = (await execFileP('ip', ['netns', 'pids', ns])).stdout;
    } catch {
      continue;
    }
    for (const pid of pids.split('\n').filter(Boolean).map(Number)) {
      if (listeners.has(pid) || pid === process.pid) continue;
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
      } catch {
        continue;
      }
      out.push({ pid, cmd, host });
    }
  }
  return out;
}

/** SSH sessions still open on the hosts (sshd per-connection processes, no client left). */
async function hostSessions(site: TestSite): Promise<Array<{ pid: number; cmd: string; host: string }>> {
  return (await sitePids(site)).filter((p) => p.host !== 'vault' && p.cmd.startsWith('sshd: '));
}

const alive = (pid: number): boolean => {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** Our namespaces and processes still there after the clean-up (none expected). */
function leftovers(site: TestSite, pids: number[]): string {
  const ns = netnsList();
  const ours = ns ? ns.split('\n').filter((l) => l.includes(site.id)) : [];
  const processes = [...pids, ...site.hosts.map((h) => h.sshd?.pid ?? 0)].filter((p) => p && alive(p));
  const sshd = sshdProcesses();
  return (
    `namespaces of this run left: ${ours.length}; its sshd and other processes left: ${processes.length}` +
    ` (ip netns list: ${ns ? ns.replace(/\n/g, '; ') : 'empty'}; pgrep sshd: ${sshd ? sshd.split('\n').length : 0}${sshd && !ours.length && !processes.length ? ', none of them this run\'s' : ''})`
  );
}

async function main(): Promise<number> {
  const started = performance.now();
  console.log(`passtore benchmark: putcrt over ${HOSTS} hosts (real sshd in network namespaces), default concurrency vs --jobs 1, per host vs scp; auth: ${AUTH} (BENCH_AUTH; ${AUTH_LABEL})`);
  const why = siteUnavailable();
  if (why) throw new Error(`the test site cannot be built here: ${why}`);
  machineInfo();
  noteLoad('start');

  // ---- The site ------------------------------------------------------------------------
  let t = performance.now();
  const site = await TestSite.start(HOSTS);
  cpuSite = site;
  closedFirewall = await inNs(site.vaultNs, ['iptables', '-S']);
  cleanups.push(async () => {
    // Nothing this run opened may be left: checked (and printed) before the site stops.
    try {
      console.log(`clean-up: vault namespace before the site stops: ${await firewallClosed(site, 'at the end')}`);
    } catch (e) {
      console.log(`clean-up: ${(e as Error).message}`);
    }
    // SSH sessions the hosts still hold (see the teardown snapshots) outlive their listener.
    const left = await sitePids(site);
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGTERM');
      } catch {
        // gone already
      }
    }
    await site.stop();
    await pause(300);
    for (const p of left) {
      if (!alive(p.pid)) continue;
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    console.log(`clean-up: site stopped (${left.length} leftover process${left.length === 1 ? '' : 'es'} in its namespaces ended); ${leftovers(site, left.map((p) => p.pid))}`);
  });
  console.log(`site: ${HOSTS} hosts up in ${((performance.now() - t) / 1000).toFixed(1)} s (vault namespace ${site.vaultNs}, hosts ${site.hosts[0]!.address}–${site.hosts.at(-1)!.address})`);

  const work = tempDir('passtore-putcrt-bench-');
  const home: Home = makeHome([`domain = ${site.domain}`, 'operator = bench', `crt_path = ${CRT_PATH}`, ...guardConfig(site, GUARD)]);
  console.log(`guard: ${GUARD} ([network] ${GUARD === 'serial' ? 'one command at a time' : GUARD === 'parallel' ? 'parallel = yes, iptables -w' : `batch = iptables-restore -w --noflush${GUARD === 'batch-parallel' ? ', parallel = yes' : ''}`}); relay: ${site.relay ? `${site.relay.rttMs} ms round trip` : 'none'}`);
  cleanups.push(() => home.remove());
  const ca = await FixtureCa.create();
  cleanups.push(() => ca.remove());

  // ---- The vault, through the real binary in the vault namespace ------------------------
  t = performance.now();
  const sh = vaultShell(home.env, site.vaultNs);
  await sh.createVault(PASSPHRASE);

  const hostsFile = join(work, 'hosts.passtore');
  writeFileSync(hostsFile, site.hosts.map((h) => `host add ${h.name} --address ${h.address}\n`).join(''));
  expectOut('source hosts', (await shell(sh, `source ${hostsFile}`)).out, `${HOSTS} commands run`);
  for (const h of site.hosts) expectOut(`add ${h.name}`, (await shell(sh, `add ${h.name}`, { answers: [h.rootPassword, h.rootPassword] })).out, `stored root@${h.fqdn}:ssh`);
  for (const h of site.hosts) expectOut(`host trust ${h.name}`, (await shell(sh, `host trust ${h.name}`, { answers: ['y'] })).out, /pinned SHA256:\S+ for /);
  const reqDir = join(work, 'requests');
  mkdirSync(reqDir, { recursive: true });
  const crtreq = await shell(sh, `crtreq 'host*' --out ${reqDir}`, { timeoutMs: 120_000 });
  const reqs = readdirSync(reqDir).filter((f) => f.endsWith('.req')).sort();
  if (reqs.length !== HOSTS) throw new Error(`crtreq wrote ${reqs.length} requests, not ${HOSTS}; output:\n${crtreq.out.slice(-2000)}`);
  const certDir = join(work, 'certs');
  mkdirSync(certDir);
  const certFiles = new Map<string, string>();
  for (const r of reqs) {
    const fqdn = r.replace(/\.req$/, '');
    certFiles.set(fqdn, await ca.sign(join(reqDir, r), { out: join(certDir, `${fqdn}.pem`), days: 90 }));
  }
  const getcrtFile = join(work, 'getcrt.passtore');
  writeFileSync(getcrtFile, [...certFiles.values()].map((f) => `getcrt ${f}\n`).join(''));
  expectOut('source getcrt', (await shell(sh, `source ${getcrtFile}`, { timeoutMs: 60_000 })).out, `${HOSTS} commands run`);
  const lcrt = (await shell(sh, "lcrt 'host*'")).out;
  expectOut('lcrt', lcrt, new RegExp(`${HOSTS} certificates: 0 expired`));
  console.log(`vault: created, ${HOSTS} hosts added (source), passwords typed (add), keys pinned (host trust), keys + requests (crtreq, ${fmt(crtreq.ms)} ms), signed by the fixture CA, stored (source of getcrt) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  noteLoad('after set-up');

  // ---- BENCH_AUTH=key: the deploy key, made and installed before any timed run ---------
  if (AUTH === 'key') {
    t = performance.now();
    expectOut('sshkey create', (await shell(sh, 'sshkey create')).out, /created the deploy key SHA256:\S+/);
    const installed = await shell(sh, "sshkey install 'host*'", { timeoutMs: 120_000 });
    const n = (installed.out.match(/deploy key SHA256:\S+ installed/g) ?? []).length;
    if (n !== HOSTS || /failed/.test(installed.out)) throw new Error(`sshkey install 'host*': ${n} of ${HOSTS} hosts got the key; output:\n${installed.out.slice(-3000)}`);
    console.log(`deploy key: sshkey create, sshkey install 'host*' (${HOSTS} hosts, over the password login) in ${fmt(performance.now() - t)} ms; every putcrt below must report "with the deploy key" on all ${HOSTS} hosts`);
  }

  // ---- putcrt: default concurrency vs one at a time -----------------------------------------
  /** Each host's result line names its way in (viaOf): all 20 "with the deploy key" in key mode, none with a password. */
  const checkAuth = (line: string, out: string) => {
    const viaKey = (out.replace(/\s+/g, ' ').match(/with the deploy key/g) ?? []).length;
    if (viaKey !== (AUTH === 'key' ? HOSTS : 0)) throw new Error(`${line} (BENCH_AUTH=${AUTH}): ${viaKey} of ${HOSTS} hosts reached with the deploy key; output:\n${out.slice(-3000)}`);
  };
  const putcrtOn = async (on: PtySession, jobs: number | undefined): Promise<number> => {
    const line = `putcrt 'host*'${jobs ? ` --jobs ${jobs}` : ''}`;
    const r = await shell(on, line, { timeoutMs: 180_000 });
    if (!r.out.includes(`deployed to ${HOSTS} hosts`) || /failed/.test(r.out)) throw new Error(`${line}: output:\n${r.out.slice(-3000)}`);
    checkAuth(line, r.out);
    return r.ms;
  };
  /** CPU time of each counted run: the machine's, passtore's own and its children's (ms). */
  const cpuRuns: { par: CpuSpent[]; ser: CpuSpent[] } = { par: [], ser: [] };
  const putcrt = async (jobs: number | undefined, counted = true) => {
    const before = cpuNow(sh.pid);
    const ms = await putcrtOn(sh, jobs);
    if (counted) (jobs === 1 ? cpuRuns.ser : cpuRuns.par).push(cpuSince(before, sh.pid, ms));
    return ms;
  };
  console.log('\n== putcrt');
  const warmPar = await putcrt(undefined, false);
  console.log(`  warm-up (not counted): default ${fmt(warmPar)} ms; ${AUTH === 'key' ? `all ${HOSTS} hosts reached with the deploy key` : `no host reached with a key (${AUTH_LABEL})`}`);
  const par: number[] = [];
  const ser: number[] = [];
  for (let i = 0; i < Math.max(RUNS.parallel, RUNS.serial); i++) {
    // Interleaved, the order alternating, so drift in the machine's load hits both alike.
    const order: Array<number | undefined> = i % 2 ? [1, undefined] : [undefined, 1];
    for (const jobs of order) {
      if (jobs === undefined && par.length < RUNS.parallel) par.push(await putcrt(undefined));
      if (jobs === 1 && ser.length < RUNS.serial) ser.push(await putcrt(1));
    }
    console.log(`  run ${i + 1}: default ${par[i] !== undefined ? fmt(par[i]!) : '—'} ms, --jobs 1 ${ser[i] !== undefined ? fmt(ser[i]!) : '—'} ms   (load ${loadAvg()})`);
  }
  noteLoad('after putcrt runs');
  // After each phase: SSH sessions the hosts still hold, and the vault side's TCP sockets.
  const snapshots: string[] = [];
  const countOrphans = async (phase: string, connections: number) => {
    await pause(1500); // a cleanly closed connection's sshd is gone well within this
    const open = await hostSessions(site);
    const states = new Map<string, number>();
    for (const l of (await inNs(site.vaultNs, ['ss', '-Htan'])).split('\n').filter(Boolean)) {
      const st = l.trim().split(/\s+/)[0]!;
      if (st !== 'LISTEN') states.set(st, (states.get(st) ?? 0) + 1);
    }
    const vault = states.size ? [...states].map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
    const hosts = [...new Set(open.map((o) => o.host))].join(' ');
    const line = `after ${phase} (${connections} connections): ${open.length} SSH session${open.length === 1 ? '' : 's'} open on the hosts${hosts ? ` (${hosts})` : ''}; vault-side TCP sockets: ${vault}`;
    snapshots.push(line);
    console.log(`  ${line}`);
  };
  await countOrphans('set-up (host trust) and the counted runs', HOSTS + (1 + RUNS.parallel + RUNS.serial) * HOSTS);

  // What is on host1 now: the pair in place, modes, and the backups the runs left.
  const h1 = site.hosts[0]!;
  const certOnHost = await onHost(h1, ['cat', `${CRT_PATH}/hostcert.pem`]);
  const keyOnHost = await onHost(h1, ['cat', `${CRT_PATH}/hostkey.pem`]);
  if (sha256(certOnHost) !== sha256(readFileSync(certFiles.get(h1.fqdn)!, 'utf8'))) throw new Error(`${h1.name}: the deployed certificate is not the one signed`);
  const listing = (await onHost(h1, ['ls', CRT_PATH])).trim().split('\n');
  const modes = (await onHost(h1, ['stat', '-c', '%n %a %U', `${CRT_PATH}/hostcert.pem`, `${CRT_PATH}/hostkey.pem`])).trim().replace(/\n/g, ', ');
  const deploys = 1 + RUNS.parallel + RUNS.serial;

  const parStat = record(`1. putcrt 'host*' (default concurrency ${DEFAULT_CONCURRENCY}), ${HOSTS} hosts, ${AUTH_LABEL}`, par, 'typed at the passtore> prompt in the vault namespace; Enter → next prompt; "deployed to 20 hosts" checked');
  const serStat = record(`2. putcrt 'host*' --jobs 1, ${HOSTS} hosts, ${AUTH_LABEL}`, ser, 'same, one host at a time');
  const perHost = serStat.median / HOSTS;
  record(`3. per host, one at a time (2 / 20), ${AUTH_LABEL}`, { median: perHost, min: serStat.min / HOSTS, max: serStat.max / HOSTS, n: 0 }, 'derived; includes the guard commands (up, allow, revoke, down) for each host');
  record(`   3a. per host at default concurrency (1 / 20), ${AUTH_LABEL}`, { median: parStat.median / HOSTS, min: parStat.min / HOSTS, max: parStat.max / HOSTS, n: 0 }, 'derived');

  // ---- Guard cost: the same putcrt with the guard and with none, alternating ---------------
  // What the guard adds to the wall, measured directly: a second shell on the same vault
  // whose config has no [network] section (the guard does nothing), run while the
  // benchmark holds the vault namespace open itself (link up, one ACCEPT rule per host's
  // address and port 22, the rules the site's guard adds), opened before and closed after
  // each timed run. Before every run of either kind both files on every host get one more
  // byte, so every run changes both files on every host (backups made).
  console.log('\n== guard cost: putcrt with the guard against putcrt with none');
  const noGuardConfig = join(home.dir, '.config', 'passtore', 'no-guard.conf');
  writeFileSync(noGuardConfig, `${[`domain = ${site.domain}`, 'operator = bench', `crt_path = ${CRT_PATH}`].join('\n')}\n`);
  const nsh = vaultShell({ ...home.env, PASSTORE_CONFIG: noGuardConfig }, site.vaultNs);
  await unlock(nsh);
  const openRule = (h: TestHost) => ['-o', 'vault0', '-d', h.address, '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT'];
  const openRules = new Set<TestHost>();
  let linkUp = false;
  const closeNoGuard = async () => {
    for (const h of [...openRules]) {
      await inNs(site.vaultNs, ['iptables', '-D', 'OUTPUT', ...openRule(h)]);
      openRules.delete(h);
    }
    if (linkUp) await inNs(site.vaultNs, ['ip', 'link', 'set', 'vault0', 'down']);
    linkUp = false;
  };
  cleanups.push(closeNoGuard);
  const openNoGuard = async () => {
    linkUp = true;
    await inNs(site.vaultNs, ['ip', 'link', 'set', 'vault0', 'up']);
    for (const h of site.hosts) {
      openRules.add(h);
      await inNs(site.vaultNs, ['iptables', '-I', 'OUTPUT', ...openRule(h)]);
    }
    const st = await site.vaultState();
    if (!st.linkUp || st.rules.length !== HOSTS) throw new Error(`no-guard run: expected the link up and ${HOSTS} rules, found link ${st.linkUp ? 'up' : 'down'} and ${st.rules.length} rules`);
  };
  const newContents = () =>
    Promise.all(site.hosts.map((h) => onHost(h, ['sh', '-c', 'printf "\\n" >> "$1" && printf "\\n" >> "$2"', 'sh', `${CRT_PATH}/hostcert.pem`, `${CRT_PATH}/hostkey.pem`])));
  const costRun = async (guarded: boolean): Promise<number> => {
    await newContents();
    await pause(200);
    if (!guarded) await openNoGuard();
    let r: { out: string; ms: number };
    try {
      r = await shell(guarded ? sh : nsh, "putcrt 'host*'", { timeoutMs: 180_000 });
    } finally {
      if (!guarded) await closeNoGuard();
    }
    const changed = (r.out.match(/previous pair kept as/g) ?? []).length;
    if (!r.out.includes(`deployed to ${HOSTS} hosts`) || /failed/.test(r.out) || changed !== HOSTS) throw new Error(`putcrt ${guarded ? 'with' : 'without'} the guard: ${changed} of ${HOSTS} hosts changed; output:\n${r.out.slice(-3000)}`);
    checkAuth(`putcrt ${guarded ? 'with' : 'without'} the guard`, r.out);
    await firewallClosed(site, `after the putcrt ${guarded ? 'with' : 'without'} the guard`);
    return r.ms;
  };
  const withGuard: number[] = [];
  const noGuard: number[] = [];
  const loadBefore = loadAvg();
  console.log(`  warm-up (not counted): with the guard ${fmt(await costRun(true))} ms, without ${fmt(await costRun(false))} ms`);
  for (let i = 0; i < RUNS.guardCost; i++) {
    for (const guarded of i % 2 ? [false, true] : [true, false]) (guarded ? withGuard : noGuard).push(await costRun(guarded));
    console.log(`  pair ${i + 1}: with the guard ${fmt(withGuard[i]!)} ms, without ${fmt(noGuard[i]!)} ms, difference ${fmt(withGuard[i]! - noGuard[i]!)} ms   (load ${loadAvg()})`);
  }
  nsh.line('exit');
  await nsh.exited(10_000);
  noteLoad('after the guard-cost runs');
  const guardCost = {
    withGuard: stat(withGuard),
    noGuard: stat(noGuard),
    diff: stat(withGuard.map((w, i) => w - noGuard[i]!)),
    load: `${loadBefore} → ${loadAvg()}`,
  };
  record(`   1b. putcrt 'host*' with the guard (guard-cost pairs), ${AUTH_LABEL}`, withGuard, 'alternating with 1c; both files changed on every host each run');
  record(`   1c. putcrt 'host*' with no guard (namespace held open by the benchmark), ${AUTH_LABEL}`, noGuard, 'a shell whose config has no [network]; link up and one rule per host opened before and closed after each run, untimed');
  await countOrphans('the guard-cost runs', 2 * (1 + RUNS.guardCost) * HOSTS);

  // ---- scp baseline: the same two files to host1, key authentication ----------------------
  console.log('\n== scp baseline');
  const local = join(work, 'scp-src');
  mkdirSync(local, { mode: 0o700 });
  writeFileSync(join(local, 'hostcert.pem'), certOnHost, { mode: 0o644 });
  writeFileSync(join(local, 'hostkey.pem'), keyOnHost, { mode: 0o400 });
  const sshKey = join(work, 'id_ed25519');
  await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'putcrt-bench', '-f', sshKey]);
  await site.onHost(h1, ['sh', '-c', 'cat >> /etc/ssh/passtore_authorized_keys/root'], readFileSync(`${sshKey}.pub`, 'utf8'));
  const remoteDir = '/etc/passtore-scp-baseline';
  await onHost(h1, ['mkdir', '-p', '-m', '0755', remoteDir]);
  const knownHosts = join(work, 'known_hosts');
  const scpArgv = [
    'scp', '-q', '-i', sshKey, '-o', 'StrictHostKeyChecking=accept-new', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes',
    join(local, 'hostcert.pem'), join(local, 'hostkey.pem'), `root@${h1.address}:${remoteDir}/`,
  ];
  const rule = ['-o', 'vault0', '-d', h1.address, '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT'];
  const guardMs: Record<string, number> = {};
  let opened = false;
  const closeGuard = async () => {
    if (!opened) return;
    opened = false;
    guardMs.revoke = await timeAsync(() => inNs(site.vaultNs, ['iptables', '-D', 'OUTPUT', ...rule]));
    guardMs.down = await timeAsync(() => inNs(site.vaultNs, ['ip', 'link', 'set', 'vault0', 'down']));
  };
  cleanups.push(closeGuard);
  opened = true;
  guardMs.up = await timeAsync(() => inNs(site.vaultNs, ['ip', 'link', 'set', 'vault0', 'up']));
  guardMs.allow = await timeAsync(() => inNs(site.vaultNs, ['iptables', '-I', 'OUTPUT', ...rule]));
  const scpTimes: number[] = [];
  const nsTrue: number[] = [];
  try {
    await inNs(site.vaultNs, scpArgv); // warm-up: accepts and records the host key
    for (let i = 0; i < RUNS.scp; i++) scpTimes.push(await timeAsync(() => inNs(site.vaultNs, scpArgv)));
    for (let i = 0; i < RUNS.netnsExec; i++) nsTrue.push(await timeAsync(() => inNs(site.vaultNs, ['true'])));
  } finally {
    await closeGuard();
  }
  const state = await site.vaultState();
  if (state.linkUp || state.rules.length) throw new Error(`the vault namespace was left open after scp: link ${state.linkUp ? 'up' : 'down'}, rules ${state.rules.join('; ')}`);
  const copied = await onHost(h1, ['sha256sum', `${remoteDir}/hostcert.pem`, `${remoteDir}/hostkey.pem`]);
  if (!copied.includes(sha256(certOnHost)) || !copied.includes(sha256(keyOnHost))) throw new Error('scp: the copied files do not read back equal');
  const scpStat = record('4. scp of hostcert.pem + hostkey.pem to host1 (key auth)', scpTimes, `one scp process (SFTP protocol) in the vault namespace via ip netns exec; spawn → exit; guard opened once around all runs`);
  const nsStat = record('   4a. ip netns exec NS true (spawn overhead inside 4)', nsTrue, 'the part of 4 that is not scp');
  const guardTotal = guardMs.up! + guardMs.allow! + guardMs.revoke! + guardMs.down!;
  record(
    '   4b. the guard\'s 4 commands, once (up, allow, revoke, down)',
    { median: guardTotal, min: guardTotal, max: guardTotal, n: 1 },
    `up ${fmt(guardMs.up!)}, allow ${fmt(guardMs.allow!)}, revoke ${fmt(guardMs.revoke!)}, down ${fmt(guardMs.down!)} ms (each via ip netns exec from here; passtore runs them already inside the namespace, so somewhat less); passtore runs all four per host with --jobs 1`,
  );

  // ---- Ansible: the same two files to the same 20 hosts, as sites do it today ------------
  let ansible: { f8: Stat; f20: Stat; putcrt: Stat } | undefined;
  if (process.env.BENCH_ANSIBLE !== '0') {
    ansible = await ansibleBaseline(site, work, () => putcrt(undefined, false));
    await firewallClosed(site, 'after the Ansible runs');
  }

  // ---- Where the time goes: one traced run of each, not counted --------------------------
  console.log('\n== diagnostic: traced runs (not counted)');
  sh.line('exit');
  await sh.exited(10_000);
  const traceFile = join(work, 'trace.jsonl');
  const tsh = vaultShell({ ...home.env, NODE_OPTIONS: `--import ${TRACER}`, PASSTORE_BENCH_TRACE: traceFile }, site.vaultNs);
  await unlock(tsh);
  const tracedRun = async (jobs: number | undefined): Promise<TracedRun> => {
    rmSync(traceFile, { force: true });
    const line = `putcrt 'host*'${jobs ? ` --jobs ${jobs}` : ''}`;
    const r = await shell(tsh, line, { timeoutMs: 180_000 });
    if (!r.out.includes(`deployed to ${HOSTS} hosts`)) throw new Error(`traced ${line}: output:\n${r.out.slice(-3000)}`);
    checkAuth(`traced ${line}`, r.out);
    const events = readTrace(traceFile);
    if (!events.some((e) => e.ev === 'connect')) throw new Error('the tracer recorded nothing; was it loaded?');
    return { wall: r.ms, events };
  };
  const tSerial = await tracedRun(1);
  const tParallel = await tracedRun(undefined);
  console.log(`  traced: --jobs 1 ${fmt(tSerial.wall)} ms, default ${fmt(tParallel.wall)} ms (${tSerial.events.length} + ${tParallel.events.length} events)`);
  await countOrphans('the scp runs (openssh) and the traced runs', 2 * HOSTS + RUNS.scp + 1);

  tsh.line('exit');
  await tsh.exited(10_000);

  // ---- Targets ----------------------------------------------------------------------------
  const speedup = serStat.median / parStat.median;
  const cores = os.availableParallelism();
  const cpuOf = (runs: CpuSpent[], wall: number): CpuSpent => ({ wall, machine: medianOf(runs, 'machine'), own: medianOf(runs, 'own'), children: medianOf(runs, 'children'), hosts: medianOf(runs, 'hosts'), relay: medianOf(runs, 'relay') });
  const cpuSer = cpuOf(cpuRuns.ser, serStat.median);
  const cpuPar = cpuOf(cpuRuns.par, parStat.median);
  // All the work of a run shares these cores: a run cannot take less wall time than its
  // CPU time spread over all of them, so concurrency gains at most cores × wall ÷ CPU.
  const bound = (cores * cpuSer.wall) / cpuSer.machine;
  checks.push({
    name: `putcrt ${HOSTS} hosts: default concurrency vs --jobs 1 (${AUTH_LABEL})`,
    measured: `${speedup.toFixed(2)}× faster`,
    required: `≥ ${TARGET_SPEEDUP}×`,
    ratio: speedup / TARGET_SPEEDUP,
    verdict: speedup >= TARGET_SPEEDUP ? 'met' : 'MISSED',
    note: `${fmt(serStat.median)} ms / ${fmt(parStat.median)} ms (medians of ${RUNS.serial} and ${RUNS.parallel} runs); nproc ${cores}: the 20 sshd, the remote shells and passtore share these cores; with the CPU time the one-at-a-time run takes, at most ${bound.toFixed(2)}× is possible here (see "where the CPU goes")`,
  });
  for (const [forks, st] of ansible ? ([[8, ansible.f8], [20, ansible.f20]] as const) : []) {
    const r = st.median / ansible!.putcrt.median;
    checks.push({
      name: `putcrt ${HOSTS} hosts (${AUTH_LABEL}) vs Ansible copy (${AUTH === 'key' ? 'key login' : 'password login'}), forks ${forks}`,
      measured: `${r.toFixed(1)}× faster`,
      required: '≥ 20×',
      ratio: r / 20,
      verdict: r >= 20 ? 'met' : 'MISSED',
      note: `${fmt(st.median)} ms / ${fmt(ansible!.putcrt.median)} ms (medians; putcrt runs alternating with Ansible's)`,
    });
  }
  // What the guard adds: the median of the pairs' differences, against the guarded median.
  const costShare = (100 * guardCost.diff.median) / guardCost.withGuard.median;
  const relayNote = site.relay ? `relay ${site.relay.rttMs} ms` : 'no relay';
  const guardCostLine =
    `GUARD COST (${GUARD}, ${relayNote}): T_guard − T_none = ${fmt(guardCost.diff.median)} ms = ${costShare.toFixed(1)}% of the wall (median of ${guardCost.diff.n} pairs; ` +
    `differences ${fmt(guardCost.diff.min)}…${fmt(guardCost.diff.max)} ms; T_guard median ${fmt(guardCost.withGuard.median)} ms, T_none median ${fmt(guardCost.noGuard.median)} ms; load ${guardCost.load})`;
  checks.push({
    name: `guard cost: putcrt ${HOSTS} hosts with the guard minus with none`,
    measured: `${fmt(guardCost.diff.median)} ms = ${costShare.toFixed(1)}%`,
    required: '< 10% of the wall',
    ratio: costShare / 10,
    verdict: costShare < 10 ? 'met' : 'MISSED',
    note: `median of ${guardCost.diff.n} pairs' differences over the guarded median ${fmt(guardCost.withGuard.median)} ms (${relayNote}); the union of guard activity (one traced run) is printed below as GUARD ACTIVITY`,
  });
  const perHostRatio = perHost / scpStat.median;
  checks.push({
    name: 'putcrt per host (one at a time) vs bare scp',
    measured: `${fmt(perHost)} ms vs ${fmt(scpStat.median)} ms`,
    required: 'none given',
    ratio: perHostRatio,
    verdict: 'info',
    note: `ratio = passtore per host / scp = ${perHostRatio.toFixed(2)}× (scp net of the ip netns exec spawn: ${fmt(scpStat.median - nsStat.median)} ms → ${(perHost / (scpStat.median - nsStat.median)).toFixed(2)}×); passtore logs in ${AUTH === 'key' ? 'with the deploy key' : 'by password'} and also checks the pair, runs one install command with both files on its standard input (new files created exclusively, backups of changed files, sync of the new files, mv, sync of the directory, sha256sum, stat), opens the guard and records the deploy; scp only copies`,
  });

  // ---- Results ----------------------------------------------------------------------------
  noteLoad('end');
  console.log('');
  printResults();
  console.log('');
  console.log(`where the CPU goes (medians of the counted runs; /proc; ${cores} cores; ${AUTH_LABEL}):`);
  table(
    ['run', 'wall ms', 'machine CPU ms', 'cores busy', 'passtore ms', 'guard commands ms', 'hosts\' sshd ms', 'relay ms', 'other load ms', 'vault side per host ms', 'host side per host ms'],
    [cpuSer, cpuPar].map((c, i) => [
      i === 0 ? '--jobs 1' : `default (${DEFAULT_CONCURRENCY})`,
      fmt(c.wall),
      fmt(c.machine),
      `${(c.machine / c.wall).toFixed(2)} of ${cores}`,
      fmt(c.own),
      fmt(c.children),
      fmt(c.hosts),
      fmt(c.relay),
      fmt(Math.max(0, c.machine - c.own - c.children - c.hosts - c.relay)),
      fmt((c.own + c.children) / HOSTS),
      fmt(c.hosts / HOSTS),
    ]),
    new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
  );
  console.log(
    `  the speed-up concurrency can reach when every part of the work shares ${cores} cores: at most ${cores} × ${fmt(cpuSer.wall)} ÷ ${fmt(cpuSer.machine)} = ${bound.toFixed(2)}× (measured ${speedup.toFixed(2)}×); ` +
      `passtore's own share of a host's CPU: ${fmt((cpuSer.own + cpuSer.children) / HOSTS)} of ${fmt(cpuSer.machine / HOSTS)} ms — on a site whose hosts are other machines, their part (sshd, key exchange and ${AUTH === 'key' ? 'key' : 'password'} check, the install's processes) is not on the vault's cores`,
  );
  // Diagnostic, not a target figure: what of the default run's CPU is the vault's own.
  const vaultSide = cpuPar.own + cpuPar.children;
  const siteSide = cpuPar.hosts + cpuPar.relay;
  console.log(
    `VAULT-SIDE CPU (diagnostic, not a target figure; ${AUTH_LABEL}): default run ${fmt(vaultSide)} ms of passtore and its guard commands = ${(vaultSide / cpuPar.wall).toFixed(2)} of ${cores} cores over its ${fmt(cpuPar.wall)} ms wall; ` +
      `the test hosts' sshd (with their sessions and the deploy script's processes) ${fmt(cpuPar.hosts)} ms and the relay ${fmt(cpuPar.relay)} ms = ${(siteSide / cpuPar.wall).toFixed(2)} cores, other processes on the machine ${fmt(Math.max(0, cpuPar.machine - vaultSide - siteSide))} ms; on a real site the hosts and the network run elsewhere`,
  );
  console.log('');
  console.log('where the time goes (one traced run each, not counted; putcrt-trace.js inside the binary):');
  const where = breakdown(tSerial, tParallel);
  console.log(guardCostLine);
  console.log('');
  for (const n of where) console.log(`  ${n}`);
  console.log('');
  console.log('SSH teardown, 1.5 s after each phase (sshd "root@notty" processes on the hosts; the vault namespace\'s sockets, its link down and firewall closed):');
  for (const l of snapshots) console.log(`  ${l}`);
  console.log(`host1 after ${deploys} deploys: ${modes}; ${listing.length} files in ${CRT_PATH} (${listing.filter((f) => /\.pem\.\d{8}T\d{6}(\.\d{3})?Z$/.test(f)).length} dated backups)`);
  printLoads();
  const total = (performance.now() - started) / 1000;
  console.log('');
  console.log(
    `SUMMARY (BENCH_AUTH=${AUTH}): ${checks.filter((c) => c.verdict === 'met').length}/${checks.filter((c) => c.verdict !== 'info').length} targets met; putcrt ${HOSTS} hosts default ${fmt(parStat.median)} ms vs --jobs 1 ${fmt(serStat.median)} ms = ${speedup.toFixed(2)}× (target ≥ ${TARGET_SPEEDUP}×, ratio ${(speedup / TARGET_SPEEDUP).toFixed(2)}); ` +
      `guard cost ${fmt(guardCost.diff.median)} ms = ${costShare.toFixed(1)}% of the guarded wall; ` +
      `per host ${fmt(perHost)} ms one at a time vs scp ${fmt(scpStat.median)} ms (${perHostRatio.toFixed(2)}×); ` +
      `CPU-bound limit ${bound.toFixed(2)}× (the one-at-a-time run keeps ${os.availableParallelism()} cores ${(100 * cpuSer.machine / (cpuSer.wall * os.availableParallelism())).toFixed(0)}% busy) (nproc ${os.availableParallelism()}, node ${process.version}, ${total.toFixed(0)} s in all)`,
  );
  return 0;
}

await runBench(main);
