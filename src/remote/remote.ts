/**
 * Remote operations' common path: find the target's address, open the network guard to
 * that one address and port, connect over SSH with the pinned host key as the host's login
 * user (root unless `host login` said otherwise), authenticating with the vault's deploy
 * keys first and the stored password only where they are refused, make root commands go
 * through sudo where the host wants it, run the work, and close everything, also on failure.
 */
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { PasstoreError } from '../errors.js';
import type { Context } from '../command.js';
import { DEFAULT_SERVICE, formatSpec } from '../names.js';
import type { Secret } from '../secret.js';
import type { HostRow, SshKeyRow } from '../storage/store.js';
import { openSshPrivateKey } from '../ssh/deploy-key.js';
import { SshConnection, type NewKeyHandler, type SshTarget } from '../ssh/ssh.js';

/** What remote operations use of the session's context. */
export type RemoteContext = Pick<Context, 'store' | 'vault' | 'guard' | 'prompt'>;

/** How a host is reached: the user passtore logs in as, and whether root commands use sudo. */
export function loginOf(host: HostRow): { user: string; sudo: boolean } {
  return { user: host.loginUser ?? 'root', sudo: host.loginSudo ?? false };
}

/** One line saying how a host is reached (`root`, `deploy+sudo`), for list and showcrt. */
export function describeLogin(host: HostRow): string {
  const { user, sudo } = loginOf(host);
  return sudo ? `${user}+sudo` : user;
}

/** The order deploy keys are tried in: the current one, one being installed, a rotated-out one. */
const KEY_ORDER: Record<SshKeyRow['state'], number> = { current: 0, next: 1, previous: 2, retired: 9 };

// Confirms a password against the host's own shadow entry with the host's own crypt (so
// yescrypt, SHA-512 and MD5 hashes all work): a fixed script, the user name its only
// argument, the candidate on standard input. It prints match, differ, locked or nouser.
const SHADOW_CHECK = [
  'my $pw = <STDIN>; exit 3 unless defined $pw; chomp $pw;',
  'open(my $f, "<", "/etc/shadow") or do { print "unreadable\\n"; exit 4 };',
  'while (my $l = <$f>) { chomp $l; my @p = split /:/, $l, -1; next unless $p[0] eq $ARGV[0];',
  '  my $h = $p[1]; if ($h eq "" || $h =~ /^[!*]/) { print "locked\\n"; exit 0 }',
  '  my $c = crypt($pw, $h); $pw = "";',
  '  print((defined $c && $c eq $h) ? "match\\n" : "differ\\n"); exit 0 }',
  'print "nouser\\n";',
].join('\n');

/** Options of `asRoot`: which keys to try (default: the vault's), and whether a password may be sent. */
export interface AccessOptions {
  /** Keys to try instead of the vault's deploy keys (OpenSSH format; the caller wipes them). */
  keys?: Buffer[];
  /** False: never send the stored password (a key must work). */
  password?: boolean;
  /** Ctrl-C while connecting gives up with PasstoreError('cancelled'); after that, `fn` reads it. */
  signal?: AbortSignal;
}

/** Where a stored host is reached. */
export async function addressOf(name: string, address: string | null): Promise<string> {
  if (address) return address;
  if (isIP(name)) return name;
  try {
    return (await lookup(name)).address;
  } catch {
    throw new PasstoreError('io', `${name}: no address stored and the name does not resolve; give one with host address ${name} IP`);
  }
}

export class Remote {
  constructor(private readonly deps: RemoteContext) {}

  /** The SSH target of a stored host (its pinned key required). */
  async targetOf(host: HostRow): Promise<SshTarget> {
    return { name: host.fqdn, address: await addressOf(host.fqdn, host.address), port: host.port, pinnedKey: host.sshHostKey ?? undefined };
  }

  /** The stored root@host:ssh password (the caller wipes it). */
  async rootPassword(host: HostRow, user = 'root'): Promise<Secret> {
    const entry = await this.deps.store.getEntry(host.fqdn, user, DEFAULT_SERVICE);
    if (!entry || entry.state !== 'set') throw new PasstoreError('not-found', `no ${formatSpec({ fqdn: host.fqdn, user, service: DEFAULT_SERVICE })} password in the vault to log in with`);
    // Another session may have rekeyed since this one last looked (a long run, a prompt).
    await this.deps.vault.refresh();
    return this.deps.vault.openPassword(entry);
  }

  /** The deploy keys in the order they are tried (not retired ones). */
  async deployKeyRows(): Promise<SshKeyRow[]> {
    return (await this.deps.store.listSshKeys()).filter((k) => k.state !== 'retired').sort((a, b) => KEY_ORDER[a.state] - KEY_ORDER[b.state] || b.id - a.id);
  }

  /** A deploy key in OpenSSH format, in memory (the caller wipes it). */
  openDeployKey(row: SshKeyRow): Buffer {
    const pkcs8 = this.deps.vault.openSshKey(row);
    try {
      return openSshPrivateKey(pkcs8);
    } finally {
      pkcs8.fill(0);
    }
  }

  /** The stored password of the host's login user, or undefined (the caller wipes it). */
  async loginPassword(host: HostRow): Promise<Secret | undefined> {
    const entry = await this.deps.store.getEntry(host.fqdn, loginOf(host).user, DEFAULT_SERVICE);
    if (entry?.state !== 'set') return undefined;
    // Another session may have rekeyed since this one last looked (a long run, a prompt).
    await this.deps.vault.refresh();
    return this.deps.vault.openPassword(entry);
  }

  /**
   * Checks, before anything is stored or sent, that the host can be reached: its key is
   * pinned, and the vault holds a deploy key or the login user's password.
   */
  async checkAccess(host: HostRow): Promise<void> {
    if (!host.sshHostKey) throw new PasstoreError('policy', `${host.fqdn} has no pinned SSH host key; run host trust ${host.fqdn} first`);
    if ((await this.deployKeyRows()).length > 0) return;
    const { user } = loginOf(host);
    const entry = await this.deps.store.getEntry(host.fqdn, user, DEFAULT_SERVICE);
    if (!entry || entry.state !== 'set') throw new PasstoreError('not-found', `no deploy key and no ${formatSpec({ fqdn: host.fqdn, user, service: DEFAULT_SERVICE })} password in the vault to log in with`);
  }

  /**
   * Runs `fn` on a connection to a stored host as its login user, guard open: the deploy
   * keys are tried first, the stored password only where they are refused; root commands
   * (`execRoot`) go through sudo when the host was set up so (`host login --sudo`).
   */
  async asRoot<T>(host: HostRow, fn: (conn: SshConnection) => Promise<T>, options: AccessOptions = {}): Promise<T> {
    const target = await this.targetOf(host);
    if (!target.pinnedKey) throw new PasstoreError('policy', `${host.fqdn} has no pinned SSH host key; run host trust ${host.fqdn} first`);
    const { user, sudo } = loginOf(host);
    // Another session may have rekeyed since this one last looked: keys open with the current data key.
    await this.deps.vault.refresh();
    const keys = options.keys ? [] : await Promise.all((await this.deployKeyRows()).map((k) => this.openDeployKey(k)));
    const password = options.password === false ? undefined : await this.loginPassword(host);
    try {
      if (keys.length === 0 && !options.keys?.length && !password) {
        throw new PasstoreError('not-found', `no deploy key and no ${formatSpec({ fqdn: host.fqdn, user, service: DEFAULT_SERVICE })} password in the vault to log in with`);
      }
      return await this.with(
        target,
        { username: user, password, keys: options.keys ?? keys },
        async (conn) => {
          if (sudo) conn.useSudo(password);
          return fn(conn);
        },
        undefined,
        options.signal,
      );
    } finally {
      password?.wipe();
      for (const k of keys) k.fill(0);
    }
  }

  /**
   * Whether the host's own authentication database holds `password` for `user`: a fresh
   * SSH login with it first; where that is refused (a host that refuses password logins
   * for that user), the host's shadow entry is compared with it over the usual access
   * login (deploy key, or the login user with sudo). Never changes anything. `signal`
   * gives up a connection being made (PasstoreError 'cancelled').
   */
  async confirmPassword(host: HostRow, user: string, password: Secret, signal?: AbortSignal): Promise<boolean> {
    const target = await this.targetOf(host);
    if (await this.checkLogin(target, user, password, signal)) return true;
    try {
      return await this.asRoot(host, async (conn) => (await this.shadowCheck(conn, user, password)) === 'match', { signal });
    } catch (e) {
      if (e instanceof PasstoreError && (e.code === 'auth' || e.code === 'not-found')) return false;
      throw e;
    }
  }

  /** Compares `password` with `user`'s shadow entry on a connected host (nothing is changed). */
  async shadowCheck(conn: SshConnection, user: string, password: Secret): Promise<'match' | 'differ' | 'locked' | 'nouser'> {
    const input = Buffer.concat([password.bytes(), Buffer.from('\n')]);
    try {
      const r = await conn.execRoot(['perl', '-e', SHADOW_CHECK, user], input);
      const answer = r.stdout.trim();
      if (r.code === 0 && (answer === 'match' || answer === 'differ' || answer === 'locked' || answer === 'nouser')) return answer;
      throw new PasstoreError('io', `${conn.target.name}: cannot check the password against the host's shadow entry (${r.stderr.trim().split('\n')[0] || answer || `status ${r.code}`})`);
    } finally {
      input.fill(0);
    }
  }

  /** Runs `fn` on a connection to any target with the given credentials, guard open; `signal` as in AccessOptions. */
  async with<T>(target: SshTarget, auth: { username: string; password?: Secret; keys?: Buffer[] }, fn: (conn: SshConnection) => Promise<T>, onNewKey?: NewKeyHandler, signal?: AbortSignal): Promise<T> {
    return this.deps.guard.withAccess({ address: target.address, port: target.port }, async () => {
      const conn = await SshConnection.connect(target, auth, { onNewKey, signal });
      try {
        return await fn(conn);
      } finally {
        await conn.close();
      }
    });
  }

  /**
   * The SHA-256 (hex) of the certificate a TLS service on the host presents, through the
   * guard opened to that one address and port. The chain is not judged here: the caller
   * compares the exact certificate with the one it deployed.
   */
  async presentedCertificate(host: HostRow, port: number, timeoutMs = 10_000): Promise<string> {
    const address = await addressOf(host.fqdn, host.address);
    return this.deps.guard.withAccess({ address, port }, () =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: address, port, servername: isIP(host.fqdn) ? undefined : host.fqdn, rejectUnauthorized: false });
        const fail = (why: string) => {
          socket.destroy();
          reject(new PasstoreError('io', `${host.fqdn}: TLS on port ${port}: ${why}`));
        };
        socket.setTimeout(timeoutMs, () => fail(`no answer in ${timeoutMs / 1000} s`));
        socket.once('error', (e: NodeJS.ErrnoException) => fail(e.code ?? e.message.split('\n')[0]!));
        socket.once('secureConnect', () => {
          const raw = socket.getPeerCertificate()?.raw;
          socket.end();
          if (!raw) return fail('no certificate presented');
          resolve(createHash('sha256').update(raw).digest('hex'));
        });
      }),
    );
  }

  /** Logs in once to check a password works, and closes (guard open for the time of it). */
  async checkLogin(target: SshTarget, username: string, password: Secret, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.with(target, { username, password }, async () => undefined, undefined, signal);
      return true;
    } catch (e) {
      if (e instanceof PasstoreError && e.code === 'auth') return false;
      throw e;
    }
  }

  /** A target that may not be a stored host (a workstation): its key is confirmed if not pinned. */
  async workstation(name: string): Promise<{ target: SshTarget; onNewKey: NewKeyHandler }> {
    const host = isIP(name) ? undefined : await this.deps.store.getHost(name);
    const target: SshTarget = host ? await this.targetOf(host) : { name, address: await addressOf(name, null), port: 22 };
    const onNewKey: NewKeyHandler = (key) => this.deps.prompt.confirm(`${name} presents the ${key.type} host key ${key.fingerprint}, not pinned in the vault. Connect?`);
    return { target, onNewKey };
  }
}
