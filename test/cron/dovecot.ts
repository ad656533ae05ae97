/**
 * A throwaway dovecot IMAP server for the IMAP fetcher tests: its own config, base_dir,
 * state_dir and log in a temp directory, plain IMAP on 127.0.0.1 at a free port (ssl = no,
 * plaintext logins allowed), one user from a passwd-file with a {PLAIN} password, its
 * Maildir in the temp directory (owned by nobody, the static userdb uid). Run in the
 * foreground (-F) as this process's child, so stopping it is a signal to a handle we own
 * (and the pid file as a fallback), not a search by name. Needs root (uid switch).
 *
 * The CA's mails are delivered as a mail server would: written to Maildir/tmp, then
 * renamed into Maildir/new. The log's "Logged out ... body_count=N" lines tell how many
 * message bodies each IMAP session fetched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, skipUnless, waitForPort } from './fetch-vault.js';

const DOVECOT = '/usr/sbin/dovecot';
const NOBODY = 65534;

/** Why dovecot cannot be run here, or undefined. */
export function dovecotUnavailable(): string | undefined {
  if (!existsSync(DOVECOT)) return `${DOVECOT} is missing (apt-get install dovecot-imapd)`;
  if (process.getuid?.() !== 0) return 'dovecot with a static userdb uid needs root';
  return undefined;
}

/** node:test's skip option: a reason outside CI, a failure under CI. */
export function dovecotSkip(): string | false {
  return skipUnless('dovecot (IMAP)', dovecotUnavailable());
}

/** One IMAP session as dovecot logged it at logout. */
export interface ImapSessionLog {
  user: string;
  bodyCount: number;
  line: string;
}

export class TestDovecot {
  readonly dir: string;
  readonly user = 'passtore';
  readonly password = `imap-${randomBytes(9).toString('base64url')}`;
  readonly home: string;
  readonly maildir: string;
  readonly log: string;
  port = 0;
  #child: ChildProcess | undefined;
  #output = '';
  #n = 0;

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'passtore-dovecot-'));
    chmodSync(this.dir, 0o755);
    this.home = join(this.dir, 'home');
    this.maildir = join(this.home, 'Maildir');
    this.log = join(this.dir, 'dovecot.log');
  }

  static async start(): Promise<TestDovecot> {
    const d = new TestDovecot();
    try {
      await d.#start();
    } catch (e) {
      await d.stop();
      throw e;
    }
    return d;
  }

  async #start(): Promise<void> {
    for (const sub of ['new', 'cur', 'tmp']) mkdirSync(join(this.maildir, sub), { recursive: true });
    for (const p of [this.home, this.maildir, ...['new', 'cur', 'tmp'].map((s) => join(this.maildir, s))]) chownSync(p, NOBODY, NOBODY);
    mkdirSync(join(this.dir, 'run'));
    mkdirSync(join(this.dir, 'state'));
    const users = join(this.dir, 'users');
    writeFileSync(users, `${this.user}:{PLAIN}${this.password}::::::\n`, { mode: 0o644 }); // read by the auth process (user dovecot)
    this.port = await freePort();
    const conf = join(this.dir, 'dovecot.conf');
    writeFileSync(
      conf,
      [
        'protocols = imap',
        'listen = 127.0.0.1',
        `base_dir = ${join(this.dir, 'run')}`,
        `state_dir = ${join(this.dir, 'state')}`,
        `log_path = ${this.log}`,
        `info_log_path = ${this.log}`,
        'ssl = no',
        'disable_plaintext_auth = no',
        'auth_mechanisms = plain login',
        'mail_location = maildir:~/Maildir',
        'passdb {',
        '  driver = passwd-file',
        `  args = ${users}`,
        '}',
        'userdb {',
        '  driver = static',
        `  args = uid=${NOBODY} gid=${NOBODY} home=${this.home}`,
        '}',
        'service imap-login {',
        '  inet_listener imap {',
        '    address = 127.0.0.1',
        `    port = ${this.port}`,
        '  }',
        '  inet_listener imaps {',
        '    port = 0',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    const child = spawn(DOVECOT, ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    child.stdout!.on('data', (b: Buffer) => (this.#output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (this.#output += b.toString()));
    await waitForPort(this.port, child, 15_000, () => `${this.#output}${existsSync(this.log) ? readFileSync(this.log, 'utf8') : ''}`);
  }

  /** The `[ca] imap_url` of the INBOX. */
  get url(): string {
    return `imap://${this.user}@127.0.0.1:${this.port}/INBOX`;
  }

  /** Delivers a raw RFC 5322 message (CRLF line ends) into Maildir/new, as an MTA does. */
  deliver(raw: string): string {
    const name = `${Math.floor(Date.now() / 1000)}.P${process.pid}Q${++this.#n}.passtore-test`;
    const tmp = join(this.maildir, 'tmp', name);
    writeFileSync(tmp, raw.replace(/\r?\n/g, '\r\n'), { mode: 0o600 });
    chownSync(tmp, NOBODY, NOBODY);
    renameSync(tmp, join(this.maildir, 'new', name));
    return name;
  }

  /** The log's text. */
  logText(): string {
    return existsSync(this.log) ? readFileSync(this.log, 'utf8') : '';
  }

  /**
   * Waits until every login in the log has its logout line (the log process writes them a
   * little after the client disconnects); returns the log's length then.
   */
  async settledLogLength(timeoutMs = 10_000): Promise<number> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const text = this.logText();
      const logins = (text.match(/imap-login: Info: Login: /g) ?? []).length;
      const logouts = (text.match(/: Info: (Disconnected: )?Logged out /g) ?? []).length;
      if (logouts >= logins) return text.length;
      if (Date.now() > until) throw new Error(`dovecot logged ${logins} logins but ${logouts} logouts:\n${text}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The IMAP sessions logged after log offset `from` (call settledLogLength first). */
  sessionsSince(from: number): ImapSessionLog[] {
    return this.logText()
      .slice(from)
      .split('\n')
      .flatMap((line) => {
        const m = /imap\(([^)]+)\).*Logged out .*body_count=(\d+)/.exec(line);
        return m ? [{ user: m[1]!, bodyCount: Number(m[2]), line }] : [];
      });
  }

  /** Stops the server (SIGTERM to our child, the pid file as a fallback) and removes its files. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000).unref());
      if ((await Promise.race([exited.then(() => true), timer])) === false) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    const pidFile = join(this.dir, 'run', 'master.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (pid > 0 && pid !== child?.pid) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
