/**
 * SSH through ssh2: exec for commands, SFTP for files. The host's key is checked against
 * the one pinned by `host trust` before anything is sent; a mismatch refuses the
 * connection. Remote commands are argument vectors: each word is single-quoted for the
 * remote shell, so host data never builds a command.
 */
import { createHash } from 'node:crypto';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { PasstoreError } from '../errors.js';
import { Secret } from '../secret.js';

/** What to connect to, and the key it must present. */
export interface SshTarget {
  /** The host's name, for messages. */
  name: string;
  address: string;
  port: number;
  /** `type base64` as pinned; undefined only while trusting a new host. */
  pinnedKey?: string;
}

export interface SshAuth {
  username: string;
  password?: Secret;
  privateKey?: Buffer;
  /**
   * Deploy keys (OpenSSH format, in memory), tried in this order before the password: the
   * password is sent only where every key was refused.
   */
  keys?: Buffer[];
}

/**
 * OpenSSH announces all its host keys after the login (`hostkeys-00@openssh.com`, sent
 * without asking for a reply), and ssh2 answers each announcement by asking the host to
 * sign with every one of those keys (`hostkeys-prove-00@openssh.com`): an RSA signature and
 * more on the host, and their checks here, on every connection. passtore trusts only the
 * key pinned by `host trust` and never uses the announcement, so it is ignored, as the
 * OpenSSH client does without UpdateHostKeys. ssh2 has no option for this: its message
 * handler is wrapped (ssh2 1.x's Protocol `_handlers`); where that is missing, nothing changes.
 */
export function declineHostKeyAnnouncement(client: Client): void {
  type Handler = (p: { requestFailure(): void }, name: string, wantReply: boolean, data: unknown) => void;
  const handlers = (client as unknown as { _protocol?: { _handlers?: { GLOBAL_REQUEST?: Handler } } })._protocol?._handlers;
  const global = handlers?.GLOBAL_REQUEST;
  if (!handlers || !global) return;
  handlers.GLOBAL_REQUEST = (p, name, wantReply, data) => {
    if (name !== 'hostkeys-00@openssh.com') return global(p, name, wantReply, data);
    if (wantReply) p.requestFailure();
  };
}

/** How a connection authenticated. */
export type AuthMethod = 'key' | 'password' | 'none';

/**
 * How commands that need root run on a connection: directly (logged in as root), or through
 * `sudo` as the login user, with that user's password on standard input (`sudo -S`) or
 * none (`sudo -n`, a rule that needs no password).
 */
export interface RootAccess {
  sudo: boolean;
  /** The login user's password for `sudo -S` (the connection wipes its copy on close). */
  password?: Secret;
}

// The remote side of `sudo`: a fixed script that drops every line of its standard input
// up to a marker line, then runs its arguments with the rest. Whatever sudo did not read
// (the password, when no password was asked) is dropped here, never passed on.
const SUDO_MARKER = 'passtore-stdin';
const SUDO_SKIP = 'passtore-skip';
const SUDO_WRAPPER = `while IFS= read -r l; do if [ "$l" = ${SUDO_MARKER} ]; then l=; exec "$@"; fi; done; echo "no input marker" >&2; exit 97`;

/** A host key as pinned (`type base64`) and its SHA-256 fingerprint, as OpenSSH shows it. */
export function describeHostKey(blob: Buffer): { pinned: string; fingerprint: string; type: string } {
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = blob.subarray(4, 4 + len).toString('latin1').replace(/[^\x21-\x7e]/g, '?') || 'unknown';
  return {
    type,
    pinned: `${type} ${blob.toString('base64')}`,
    fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
  };
}

/** Quotes one word for a POSIX shell: inside single quotes nothing is special. */
export function shellQuote(word: string): string {
  if (word.includes('\0')) throw new PasstoreError('usage', 'a NUL byte cannot be sent in a remote command');
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Decides about a host key that is not pinned (host trust, a workstation). */
export type NewKeyHandler = (key: { fingerprint: string; type: string; pinned: string }) => Promise<boolean>;

/**
 * A remote command's standard input: one buffer, or parts written in order, where a
 * function is called between the writes (a crash-test step between two files' bytes).
 */
export type Stdin = Buffer | string | Array<Buffer | (() => void)>;

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class SshConnection {
  #root: RootAccess = { sudo: false };
  /** The sudo password was accepted by a payload-free `sudo -v` on this connection. */
  #sudoChecked = false;

  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
    /** The key the host presented. */
    readonly hostKey: { pinned: string; fingerprint: string; type: string },
    /** The user logged in as. */
    readonly username: string,
    /** How it authenticated (a deploy key, a password). */
    readonly authMethod: AuthMethod,
  ) {}

  /** Makes `execRoot` go through sudo (the connection keeps a copy of the password until close). */
  useSudo(password?: Secret): void {
    this.#root.password?.wipe();
    this.#root = { sudo: true, password: password ? Secret.fromBytes(Buffer.from(password.bytes())) : undefined };
    this.#sudoChecked = false;
  }

  /** Whether root commands go through sudo. */
  get sudo(): boolean {
    return this.#root.sudo;
  }

  /**
   * Connects and authenticates. With `pinnedKey` the host must present exactly that key;
   * without one, `onNewKey` decides (host trust), else the connection is refused.
   * `signal` (Ctrl-C) gives up the attempt: PasstoreError('cancelled').
   */
  static async connect(target: SshTarget, auth: SshAuth, options: { onNewKey?: NewKeyHandler; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<SshConnection> {
    // ssh2 is loaded on first use: most shell sessions never connect anywhere.
    const { Client: SshClient } = await import('ssh2');
    return new Promise((resolve, reject) => {
      const client = new SshClient();
      let presented: ReturnType<typeof describeHostKey> | undefined;
      let refusal: PasstoreError | undefined;
      let settled = false;
      // Keys first, in order, then the password; a method the server does not offer is skipped.
      const methods: Array<{ used: AuthMethod; method: Record<string, unknown> }> = [
        ...(auth.keys ?? []).map((key) => ({ used: 'key' as const, method: { type: 'publickey', username: auth.username, key } })),
        ...(auth.privateKey ? [{ used: 'key' as const, method: { type: 'publickey', username: auth.username, key: auth.privateKey } }] : []),
        ...(auth.password ? [{ used: 'password' as const, method: { type: 'password', username: auth.username, password: auth.password.reveal() } }] : []),
      ];
      let next = 0;
      let used: AuthMethod = 'none';
      const cancel = () => {
        // Closed at once, so the host sees the connection go before the guard closes the
        // way to it (with end() alone, the guard closing right behind kept that from the
        // host in 2 test runs of 3).
        client.destroy();
        fail(new PasstoreError('cancelled', `${target.name}: cancelled while connecting`));
      };
      const fail = (e: PasstoreError) => {
        options.signal?.removeEventListener('abort', cancel);
        if (settled) return;
        settled = true;
        client.end();
        reject(e);
      };
      if (options.signal?.aborted) return cancel();
      options.signal?.addEventListener('abort', cancel, { once: true });
      client.on('ready', () => {
        options.signal?.removeEventListener('abort', cancel);
        if (settled) return;
        settled = true;
        resolve(new SshConnection(client, target, presented!, auth.username, used));
      });
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        if (refusal) return fail(refusal);
        fail(connectError(target, err));
      });
      client.on('close', () => fail(refusal ?? new PasstoreError('io', `${target.name}: the connection was closed`)));
      try {
        client.connect({
          host: target.address,
          port: target.port,
          username: auth.username,
          authHandler: (left: string[] | null) => {
            while (next < methods.length) {
              const m = methods[next++]!;
              if (left && !left.includes(String(m.method.type))) continue;
              used = m.used;
              return m.method;
            }
            // Nothing to offer: ask the server with `none` (host trust without credentials).
            if (next++ === methods.length && methods.length === 0) return { type: 'none', username: auth.username };
            return false;
          },
          tryKeyboard: false,
          readyTimeout: options.timeoutMs ?? 15_000,
          hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
            presented = describeHostKey(key);
            if (target.pinnedKey) {
              const ok = presented.pinned === target.pinnedKey;
              if (!ok) refusal = new PasstoreError('mismatch', `${target.name}: the SSH host key changed (now ${presented.fingerprint}); connection refused. If the host was reinstalled, check and run host trust again`);
              verify(ok);
              return;
            }
            if (!options.onNewKey) {
              refusal = new PasstoreError('policy', `${target.name} has no pinned SSH host key; run host trust ${target.name} first`);
              verify(false);
              return;
            }
            options.onNewKey(presented).then(
              (ok) => {
                if (!ok) refusal = new PasstoreError('cancelled', `${target.name}: host key not accepted; nothing was sent`);
                verify(ok);
              },
              () => verify(false),
            );
          },
        } as Parameters<Client['connect']>[0]);
        // Small SSH packets must not wait for delayed acknowledgements (Nagle).
        client.setNoDelay(true);
        declineHostKeyAnnouncement(client);
      } catch (e) {
        fail(new PasstoreError('io', `${target.name}: cannot connect (${(e as Error).message})`));
      }
    });
  }

  /** Runs a command given as words; `stdin` is written and closed. */
  exec(argv: string[], stdin?: Stdin, timeoutMs = 60_000): Promise<ExecResult> {
    const command = argv.map(shellQuote).join(' ');
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err: Error | undefined, stream: ClientChannel) => {
        if (err) return reject(new PasstoreError('io', `${this.target.name}: cannot run ${argv[0]} (${err.message})`));
        let stdout = '';
        let stderr = '';
        const timer = setTimeout(() => {
          stream.close();
          reject(new PasstoreError('io', `${this.target.name}: ${argv[0]} did not finish in ${timeoutMs / 1000} s`));
        }, timeoutMs);
        stream.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
        stream.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        stream.on('close', (code: number | null) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
        if (Array.isArray(stdin)) {
          for (const part of stdin) {
            if (typeof part === 'function') part();
            else stream.write(part);
          }
          stream.end();
        } else stream.end(stdin ?? '');
      });
    });
  }

  /**
   * Runs a command that needs root: as it is when logged in as root, else through
   * `sudo -S -p ''` with the login user's password as the first line of standard input
   * (or `sudo -n` without one). The password never appears in an argument. With a
   * password, it is first checked alone (`sudo -S -v`, once per connection, its input the
   * password line and nothing else): a wrong one is refused there, so the payload, which
   * may be a key or a root password, never reaches sudo as a password try, however many
   * tries the host's sudoers allows (`passwd_tries`).
   * @throws PasstoreError ('auth') when sudo refuses
   */
  async execRoot(argv: string[], stdin?: Stdin, timeoutMs = 60_000): Promise<ExecResult> {
    if (!this.#root.sudo) return this.exec(argv, stdin, timeoutMs);
    const pw = this.#root.password;
    // sudo reads one line: a password holding a newline would pass its rest on.
    if (pw?.bytes().includes(0x0a)) throw new PasstoreError('usage', `${this.target.name}: the stored password of ${this.username} holds a newline; sudo cannot take it`);
    if (pw && !this.#sudoChecked) await this.#checkSudo(pw, timeoutMs);
    const sudo = pw ? ['sudo', '-S', '-p', ''] : ['sudo', '-n'];
    // A refused password makes sudo read two more tries: the skip lines, never the payload.
    const head = Buffer.from(`${SUDO_SKIP}\n${SUDO_SKIP}\n${SUDO_MARKER}\n`);
    const input = Buffer.concat([...(pw ? [pw.bytes(), Buffer.from('\n')] : []), head, ...(Array.isArray(stdin) ? [] : [typeof stdin === 'string' ? Buffer.from(stdin) : (stdin ?? Buffer.alloc(0))])]);
    try {
      const r = await this.exec([...sudo, '--', 'sh', '-c', SUDO_WRAPPER, 'sh', ...argv], Array.isArray(stdin) ? [input, ...stdin] : input, timeoutMs);
      if (r.code === 1 && /incorrect password|a password is required|not in the sudoers|may not run sudo|Sorry, try again/.test(r.stderr)) {
        throw new PasstoreError('auth', `${this.target.name}: sudo refused ${this.username} (${r.stderr.trim().split('\n').at(-1)!.replace(/^sudo: /, '').slice(0, 120)})`);
      }
      return r;
    } finally {
      input.fill(0);
    }
  }

  /** `sudo -S -v` with only the password line on its input: no payload to read as further tries. */
  async #checkSudo(pw: Secret, timeoutMs: number): Promise<void> {
    const line = Buffer.concat([pw.bytes(), Buffer.from('\n')]);
    try {
      const r = await this.exec(['sudo', '-S', '-v', '-p', ''], line, timeoutMs);
      if (r.code !== 0) {
        const why = r.stderr.trim().split('\n').at(-1)?.replace(/^sudo: /, '').slice(0, 120) || `status ${r.code}`;
        throw new PasstoreError('auth', `${this.target.name}: sudo refused ${this.username} (${why})`);
      }
      this.#sudoChecked = true;
    } finally {
      line.fill(0);
    }
  }

  /** An SFTP session. */
  sftp(): Promise<Sftp> {
    return new Promise((resolve, reject) => {
      this.client.sftp((err: Error | undefined, sftp: SFTPWrapper) => (err ? reject(new PasstoreError('io', `${this.target.name}: SFTP refused (${err.message})`)) : resolve(new Sftp(sftp, this.target.name))));
    });
  }

  /** Ends the session and waits (up to 2 s) for it to close, so the guard closes after it. */
  close(): Promise<void> {
    this.#root.password?.wipe();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 2000);
      this.client.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.client.end();
    });
  }
}

/** The few SFTP operations passtore needs, with one-line errors. */
export class Sftp {
  /** Rejects when the session ends: ssh2 may never call back an operation cut short. */
  readonly #gone: Promise<never>;

  constructor(
    private readonly sftp: SFTPWrapper,
    private readonly name: string,
  ) {
    this.#gone = new Promise<never>((_, reject) => {
      const gone = () => reject(new PasstoreError('io', `${name}: the SFTP session ended in the middle of a transfer`));
      sftp.once('end', gone);
      sftp.once('close', gone);
    });
    this.#gone.catch(() => undefined);
  }

  #wrap<T>(what: string, fn: (cb: (err: Error | null | undefined, v?: T) => void) => void, timeoutMs = 60_000): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const op = new Promise<T>((resolve, reject) => {
      timer = setTimeout(() => reject(new PasstoreError('io', `${this.name}: ${what}: no answer in ${timeoutMs / 1000} s`)), timeoutMs);
      fn((err, v) => (err ? reject(new PasstoreError('io', `${this.name}: ${what}: ${(err as { code?: unknown }).code === 2 ? 'no such file' : err.message}`)) : resolve(v as T)));
    });
    return Promise.race([op, this.#gone]).finally(() => clearTimeout(timer));
  }

  /** Writes a new file (refusing to replace one) with `mode`. */
  writeNew(path: string, data: Buffer | string, mode: number): Promise<void> {
    return this.#wrap(`cannot write ${path}`, (cb) => this.sftp.writeFile(path, data, { mode, flag: 'wx' }, (e) => cb(e)));
  }

  /** Reads a file of at most `limit` bytes. */
  async read(path: string, limit = 1024 * 1024): Promise<Buffer> {
    const st = await this.#wrap<{ size: number; isFile(): boolean }>(`cannot read ${path}`, (cb) => this.sftp.stat(path, (e, s) => cb(e, s)));
    if (!st.isFile()) throw new PasstoreError('io', `${this.name}: ${path} is not a regular file`);
    if (st.size > limit) throw new PasstoreError('io', `${this.name}: ${path} is larger than ${limit} bytes`);
    return this.#wrap(`cannot read ${path}`, (cb) => this.sftp.readFile(path, (e: Error | null | undefined, d: Buffer) => cb(e, d)));
  }

  /** Makes a directory (mode 0755); one that exists already is fine. */
  async mkdir(path: string): Promise<void> {
    await this.#wrap(`cannot create ${path}`, (cb) => this.sftp.mkdir(path, { mode: 0o755 }, (e) => cb(e))).catch(() => undefined);
  }

  remove(path: string): Promise<void> {
    return this.#wrap(`cannot remove ${path}`, (cb) => this.sftp.unlink(path, (e) => cb(e)));
  }

  rename(from: string, to: string): Promise<void> {
    return this.#wrap(`cannot rename ${from}`, (cb) => this.sftp.rename(from, to, (e) => cb(e)));
  }

  end(): void {
    this.sftp.end();
  }
}

function connectError(target: SshTarget, err: Error & { level?: string; code?: string }): PasstoreError {
  if (err.level === 'client-authentication') return new PasstoreError('auth', `${target.name}: SSH authentication failed`);
  if (err.level === 'client-timeout') return new PasstoreError('io', `${target.name}: no SSH answer from ${target.address}:${target.port} (timed out)`);
  const code = err.code ?? '';
  if (/^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ECONNRESET)$/.test(code)) {
    return new PasstoreError('io', `${target.name}: cannot reach ${target.address}:${target.port} (${code})`);
  }
  return new PasstoreError('io', `${target.name}: SSH failed (${err.message.split('\n')[0]})`);
}
