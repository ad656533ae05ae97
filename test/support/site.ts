/**
 * The test site for remote operations: Linux network namespaces made and removed by the
 * tests. A bridge namespace joins a vault namespace (its link down and its firewall
 * dropping everything, loopback aside, until the network guard opens it) and several host
 * namespaces, each running its own OpenSSH sshd with a private /etc: an overlay mounted
 * inside `unshare -m`, so chpasswd and /etc/grid-security change the test host only, and
 * a /root of its own (bind-mounted there, with /etc/skel's files). A host's sshd may allow
 * root password logins, keep OpenSSH's default (keys only for root) or refuse root, and a
 * host may have a login user in group sudo. Only these namespaces' addresses are ever
 * contacted. Needs root.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRelay, type Relay } from './relay.js';

const run = promisify(execFile);

/** The port the test hosts' TLS services listen on (deploy profiles' `verify = tls`); the relay forwards it as it does SSH. */
export const SERVICE_PORT = 8443;

export interface TestHost {
  name: string;
  fqdn: string;
  ns: string;
  address: string;
  /** The overlay's upper directory: what the host wrote to its /etc. */
  etcUpper: string;
  /** The host's SSH host public key line (as in a known_hosts file, without the name). */
  hostKey: string;
  rootPassword: string;
  /** How its sshd treats root logins: `yes`, OpenSSH's default (no line), or `no`. */
  rootLogin: RootLogin;
  /** A login user in group sudo of the host's private /etc, when one was asked for. */
  loginUser?: { name: string; password: string; home: string };
  sshd?: ChildProcess;
  /** With the delaying relay, the host's own address (`address` is then its relay's). */
  realAddress?: string;
}

/** `PermitRootLogin yes`, no such line (OpenSSH's prohibit-password), or `no`. */
export type RootLogin = 'yes' | 'default' | 'no';

/** How one test host is set up (host numbers start at 1). */
export interface HostOptions {
  rootLogin?: RootLogin;
  /** A login user of this name, in group sudo (Debian sudo), with a password of its own. */
  loginUser?: string;
}

const SSHD = '/usr/sbin/sshd';

/** Why the test site cannot be built here, or undefined. */
export function siteUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the test site needs root (network namespaces, mounts)';
  for (const tool of [SSHD, '/usr/sbin/iptables', '/usr/bin/ssh-keygen', '/usr/sbin/ip', '/usr/bin/unshare', '/usr/sbin/chpasswd', '/usr/bin/sudo']) {
    if (!existsSync(tool)) return `${tool} is missing (apt-get install openssh-server iptables sudo)`;
  }
  return undefined;
}

/** node:test's skip option: a reason outside CI, a failure under CI. */
export function siteSkip(): string | false {
  const why = siteUnavailable();
  if (!why) return false;
  if (process.env.CI === 'true') throw new Error(`CI requires the test site: ${why}`);
  console.log(`# skipping remote tests: ${why}`);
  return why;
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

async function inNs(ns: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, ...args]);
  return stdout;
}

export class TestSite {
  readonly id: string;
  readonly dir: string;
  readonly vaultNs: string;
  readonly bridgeNs: string;
  readonly vaultAddress: string;
  readonly hosts: TestHost[] = [];
  /** The delaying relay in the hosts' path, when PASSTORE_TEST_RELAY_MS is set. */
  relay: Relay | undefined;
  readonly domain = 'site.test';
  #subnet: string;

  private constructor() {
    this.id = randomBytes(3).toString('hex');
    this.dir = mkdtempSync(join(tmpdir(), 'passtore-site-'));
    // A login user's home lies below: others may pass through, not list or read.
    chmodSync(this.dir, 0o711);
    this.vaultNs = `ptv-${this.id}`;
    this.bridgeNs = `ptb-${this.id}`;
    // 10.213.N.0/24, N from the id: only inside these namespaces.
    this.#subnet = `10.213.${parseInt(this.id.slice(0, 2), 16)}`;
    this.vaultAddress = `${this.#subnet}.1`;
  }

  /** Builds the site with `count` hosts, each with sshd listening on port 22. */
  static async start(count: number, options: Record<number, HostOptions> = {}): Promise<TestSite> {
    const site = new TestSite();
    try {
      await site.#build(count, options);
    } catch (e) {
      await site.stop();
      throw e;
    }
    return site;
  }

  /** The [network] section lines that drive the guard in the vault namespace. */
  networkConfig(): string[] {
    return [
      '[network]',
      'up = ip link set vault0 up',
      'allow = iptables -I OUTPUT -o vault0 -d {address} -p tcp --dport {port} -j ACCEPT',
      'revoke = iptables -D OUTPUT -o vault0 -d {address} -p tcp --dport {port} -j ACCEPT',
      // iptables -D fails on a rule already gone: -C tells the guard it is (exit 1).
      'check = iptables -C OUTPUT -o vault0 -d {address} -p tcp --dport {port} -j ACCEPT',
      'down = ip link set vault0 down',
    ];
  }

  /** A command vector that runs `argv` inside the vault namespace. */
  inVault(argv: string[]): string[] {
    return ['ip', 'netns', 'exec', this.vaultNs, ...argv];
  }

  async #build(count: number, options: Record<number, HostOptions>): Promise<void> {
    await ip('netns', 'add', this.bridgeNs);
    await ip('netns', 'add', this.vaultNs);
    await inNs(this.bridgeNs, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
    await inNs(this.bridgeNs, 'ip', 'link', 'set', 'br0', 'up');
    await this.#plug(this.vaultNs, `pv${this.id}`, 'vault0', `${this.vaultAddress}/24`, false);
    // The vault side: link down, everything dropped but loopback and replies.
    await inNs(this.vaultNs, 'ip', 'link', 'set', 'lo', 'up');
    for (const rule of [
      ['-P', 'INPUT', 'DROP'],
      ['-P', 'OUTPUT', 'DROP'],
      ['-P', 'FORWARD', 'DROP'],
      ['-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT'],
      ['-A', 'OUTPUT', '-o', 'lo', '-j', 'ACCEPT'],
      ['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'],
    ]) {
      await inNs(this.vaultNs, 'iptables', ...rule);
    }
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    for (let i = 1; i <= count; i++) await this.#addHost(i, options[i] ?? {});
    await Promise.all(this.hosts.map((h) => this.startSshd(h)));
    const rtt = Number(process.env.PASSTORE_TEST_RELAY_MS ?? 0);
    if (rtt > 0) await this.#startRelay(rtt);
  }

  /**
   * PASSTORE_TEST_RELAY_MS=N puts a delaying relay (relay.ts) with a round trip of N ms in
   * every host's path: it listens on an address of its own per host, in the bridge
   * namespace, and each host's `address` becomes that one, so every test reaches the
   * hosts through it.
   */
  async #startRelay(rttMs: number): Promise<void> {
    if (this.hosts.length > 120) throw new Error('the relay has addresses for 120 hosts');
    const pairs = [];
    for (const [i, h] of this.hosts.entries()) {
      const listen = `${this.#subnet}.${130 + i}`;
      await inNs(this.bridgeNs, 'ip', 'addr', 'add', `${listen}/24`, 'dev', 'br0');
      pairs.push({ listen, target: h.address });
    }
    this.relay = await startRelay(this.bridgeNs, pairs, rttMs, [22, SERVICE_PORT]);
    for (const [i, h] of this.hosts.entries()) {
      h.realAddress = h.address;
      h.address = pairs[i]!.listen;
    }
  }

  async #plug(ns: string, outer: string, inner: string, cidr: string, up: boolean): Promise<void> {
    await ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', `${outer}p`);
    await ip('link', 'set', outer, 'netns', this.bridgeNs);
    await ip('link', 'set', `${outer}p`, 'netns', ns);
    await inNs(this.bridgeNs, 'ip', 'link', 'set', outer, 'master', 'br0');
    await inNs(this.bridgeNs, 'ip', 'link', 'set', outer, 'up');
    await inNs(ns, 'ip', 'link', 'set', `${outer}p`, 'name', inner);
    await inNs(ns, 'ip', 'addr', 'add', cidr, 'dev', inner);
    if (up) await inNs(ns, 'ip', 'link', 'set', inner, 'up');
  }

  async #addHost(i: number, options: HostOptions): Promise<void> {
    const name = `host${i}`;
    const ns = `pth${i}-${this.id}`;
    const address = `${this.#subnet}.${10 + i}`;
    const base = join(this.dir, name);
    const etcUpper = join(base, 'upper');
    mkdirSync(etcUpper, { recursive: true });
    mkdirSync(join(base, 'work'), { recursive: true });
    mkdirSync(join(base, 'keys'), { recursive: true });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', join(base, 'keys', 'host_ed25519')]);
    const hostKey = readFileSync(join(base, 'keys', 'host_ed25519.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    const rootLogin = options.rootLogin ?? 'yes';
    writeFileSync(
      join(base, 'sshd_config'),
      [
        `ListenAddress ${address}`,
        'Port 22',
        `HostKey ${join(base, 'keys', 'host_ed25519')}`,
        `PidFile ${join(base, 'sshd.pid')}`,
        'UsePAM no',
        // OpenSSH's built-in default (prohibit-password) when the line is left out.
        ...(rootLogin === 'default' ? [] : [`PermitRootLogin ${rootLogin}`]),
        'PasswordAuthentication yes',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        // The user's own ~/.ssh/authorized_keys (root's home is the host's own, never this
        // machine's /root), and a file in the overlay /etc the benchmarks use.
        'AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/passtore_authorized_keys/%u',
        'StrictModes no',
        'Subsystem sftp internal-sftp',
        'LogLevel ERROR',
        'MaxStartups 50',
        '',
      ].join('\n'),
    );
    await ip('netns', 'add', ns);
    await this.#plug(ns, `ph${i}${this.id}`.slice(0, 15), 'eth0', `${address}/24`, true);
    await inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    const loginUser = options.loginUser ? { name: options.loginUser, password: `User-Pw-${name}-${randomBytes(4).toString('hex')}`, home: join(base, `home-${options.loginUser}`) } : undefined;
    this.hosts.push({ name, fqdn: `${name}.${this.domain}`, ns, address, etcUpper, hostKey, rootPassword: `Root-Pw-${name}-${randomBytes(4).toString('hex')}`, rootLogin, loginUser });
  }

  /** Starts (or restarts) a host's sshd in its namespace with its private /etc. */
  async startSshd(h: TestHost): Promise<void> {
    const base = join(this.dir, h.name);
    // The overlay gives the host its own /etc; the script's only inputs are our own paths.
    // A root home of its own too (Debian's /etc/skel files, as on a stock server): the
    // host never reads or writes this machine's /root, whose shell start-up files are not
    // a server's (sshd's bash sources ~/.bashrc for every remote command).
    const home = join(base, 'root');
    if (!existsSync(home)) {
      mkdirSync(home, { mode: 0o700 });
      for (const f of ['.bashrc', '.profile']) if (existsSync(join('/etc/skel', f))) copyFileSync(join('/etc/skel', f), join(home, f));
    }
    // A login user ($7, home $8) is made once, in group sudo of the private /etc only.
    const script = [
      'set -e',
      'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc',
      'mount --bind "$6" /root',
      'mkdir -p /etc/ssh/passtore_authorized_keys',
      'if [ -n "$7" ] && ! id "$7" >/dev/null 2>&1; then useradd -M -d "$8" -s /bin/sh -G sudo "$7"; mkdir -p "$8"; chown "$7": "$8"; chmod 0755 "$8"; fi',
      'chpasswd < "$3"',
      'rm -f "$3"',
      'exec "$4" -D -e -f "$5"',
    ].join('\n');
    const pwFile = join(base, 'initial-password');
    const user = h.loginUser;
    if (!existsSync(join(h.etcUpper, 'shadow'))) writeFileSync(pwFile, `root:${h.rootPassword}\n${user ? `${user.name}:${user.password}\n` : ''}`, { mode: 0o600 });
    else writeFileSync(pwFile, '', { mode: 0o600 });
    const child = spawn('ip', ['netns', 'exec', h.ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script, 'sh', h.etcUpper, join(base, 'work'), pwFile, SSHD, join(base, 'sshd_config'), home, user?.name ?? '', user?.home ?? ''], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    h.sshd = child;
    await waitForPort(h, 10_000, () => stderr);
    if (this.relay && h.realAddress) await this.relay.listening(h.address, true);
  }

  /** Stops a host's sshd (to test an unreachable host). */
  async stopSshd(h: TestHost): Promise<void> {
    const child = h.sshd;
    if (!child || child.exitCode !== null) return;
    if (this.relay && h.realAddress) await this.relay.listening(h.address, false);
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
    h.sshd = undefined;
  }

  /** Runs a command as root on a test host (inside its mount and network namespaces). */
  async onHost(h: TestHost, argv: string[], input?: string): Promise<string> {
    if (!h.sshd?.pid) throw new Error(`${h.name} is not running`);
    return new Promise((resolve, reject) => {
      const child = execFile('nsenter', ['-t', String(h.sshd!.pid), '-m', '-n', '--', ...argv], (err, stdout, stderr) => (err ? reject(new Error(`${argv.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
      child.stdin!.on('error', () => undefined); // a command that does not read its input
      child.stdin!.end(input ?? '');
    });
  }

  /** The vault namespace's firewall rules and link state, for checks. */
  async vaultState(): Promise<{ linkUp: boolean; rules: string[] }> {
    const link = await inNs(this.vaultNs, 'ip', '-o', 'link', 'show', 'vault0');
    const rules = (await inNs(this.vaultNs, 'iptables', '-S', 'OUTPUT')).split('\n').filter((l) => l.startsWith('-A OUTPUT') && !l.includes('-o lo'));
    return { linkUp: /[<,]UP[,>]/.test(link), rules };
  }

  /** Tears everything down: sshd processes, namespaces, temp files. */
  async stop(): Promise<void> {
    await this.relay?.stop().catch(() => undefined);
    this.relay = undefined;
    for (const h of this.hosts) await this.stopSshd(h).catch(() => undefined);
    for (const h of this.hosts) await ip('netns', 'del', h.ns).catch(() => undefined);
    await ip('netns', 'del', this.vaultNs).catch(() => undefined);
    await ip('netns', 'del', this.bridgeNs).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function waitForPort(h: TestHost, timeoutMs: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (h.sshd?.exitCode !== null && h.sshd?.exitCode !== undefined) throw new Error(`sshd on ${h.name} exited: ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      execFile('ip', ['netns', 'exec', h.ns, 'ss', '-Hltn', 'sport = :22'], (err, stdout) => resolve(!err && stdout.includes(':22')));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd on ${h.name} did not listen: ${stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

