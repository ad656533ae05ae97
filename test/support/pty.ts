/**
 * Drives the real `passtore` binary through a real pseudo-terminal (node-pty), in a
 * throwaway HOME. `expect` waits for text on the screen stream; the whole transcript is
 * kept so tests can check what was, and was not, shown.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pty from 'node-pty';

export const BIN = fileURLToPath(new URL('../../src/bin/passtore.js', import.meta.url));

/** Removes terminal escape sequences, for matching. */
export function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b[()][A-Z0-9]/g, '').replace(/\r\n/g, '\n');
}

export interface Home {
  dir: string;
  configFile: string;
  env: Record<string, string>;
  remove(): void;
}

/** A throwaway HOME with a config file holding `lines`. */
export function makeHome(lines: string[] = ['domain = example.org']): Home {
  const dir = mkdtempSync(join(tmpdir(), 'passtore-home-'));
  const configFile = join(dir, '.config', 'passtore', 'passtore.conf');
  mkdirSync(join(dir, '.config', 'passtore'), { recursive: true });
  writeFileSync(configFile, `${lines.join('\n')}\n`);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    TERM: 'xterm-256color',
    LANG: 'C.UTF-8',
    PASSTORE_SCRYPT_LOG_N: '14',
    PASSTORE_TEST_SWITCHES: 'for-tests-only',
    NO_COLOR: '1',
    // Long tables go straight to the screen (as GIT_PAGER=cat in git's tests).
    PAGER: 'cat',
  };
  return { dir, configFile, env, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export class PtySession {
  transcript = '';
  exitCode: number | undefined;
  #proc: pty.IPty;
  #waiters: Array<() => void> = [];
  #exited: Promise<number>;

  /** `prefix` runs the binary through another command (`ip netns exec NS` for the vault side). */
  constructor(args: string[], env: Record<string, string>, options: { prefix?: string[] } = {}) {
    const argv = [...(options.prefix ?? []), process.execPath, BIN, ...args];
    this.#proc = pty.spawn(argv[0]!, argv.slice(1), { name: 'xterm-256color', cols: 120, rows: 40, env, cwd: env.HOME });
    this.#proc.onData((d) => {
      this.transcript += d;
      for (const w of this.#waiters.splice(0)) w();
    });
    this.#exited = new Promise((resolve) => {
      this.#proc.onExit(({ exitCode }) => {
        this.exitCode = exitCode;
        for (const w of this.#waiters.splice(0)) w();
        resolve(exitCode);
      });
    });
  }

  /** The process id (the binary itself: `ip netns exec` execs it). */
  get pid(): number {
    return this.#proc.pid;
  }

  /** Waits until `what` appears after `from` in the (plain) transcript; returns its end. */
  async expect(what: string | RegExp, options: { from?: number; timeoutMs?: number } = {}): Promise<number> {
    const from = options.from ?? 0;
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    for (;;) {
      const text = plain(this.transcript).slice(from);
      const idx = typeof what === 'string' ? text.indexOf(what) : text.search(what);
      if (idx >= 0) {
        const len = typeof what === 'string' ? what.length : (text.slice(idx).match(what)?.[0].length ?? 0);
        return from + idx + len;
      }
      if (this.exitCode !== undefined) throw new Error(`passtore exited (${this.exitCode}) before showing ${String(what)}; screen:\n${plain(this.transcript).slice(-1500)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${String(what)}; screen:\n${plain(this.transcript).slice(-1500)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Where the plain transcript ends now (to expect only what comes next). */
  get mark(): number {
    return plain(this.transcript).length;
  }

  write(data: string): void {
    this.#proc.write(data);
  }

  /** Types a line and Enter. */
  line(text: string): void {
    this.#proc.write(`${text}\r`);
  }

  /**
   * Creates the vault: answers the first start's offer to create one with yes (a session
   * started as `passtore init` is asked no such question: `{ init: true }`), then
   * `passphrase` twice at the no-echo prompts; resolves at the first prompt of the new,
   * unlocked shell.
   */
  async createVault(passphrase: string, options: { init?: boolean } = {}): Promise<void> {
    if (!options.init) {
      await this.expect('Create one now? [y/N] ');
      this.line('y');
    }
    await this.expect('New vault passphrase for ');
    await pause(30);
    this.line(passphrase);
    await this.expect('(again): ');
    await pause(30);
    this.line(passphrase);
    await this.expect(/created a vault in .*\n.*passtore> $/);
  }

  /** Types a command at the prompt and waits for the next prompt; returns what it printed. */
  async command(text: string, ...answers: string[]): Promise<string> {
    const start = this.mark;
    this.line(text);
    let from = start + text.length;
    for (const a of answers) {
      await this.expect(/(: |\[y\/N\] )$/, { from });
      await pause(30);
      from = this.mark;
      this.line(a);
    }
    const end = await this.expect(/\npasstore> $/, { from: start + text.length });
    return plain(this.transcript).slice(start, end);
  }

  /** Sends Tab on its own after a short pause (typed text and Tab in one write do not complete). */
  async tab(): Promise<void> {
    await pause(150);
    this.#proc.write('\t');
    await pause(250);
  }

  exited(timeoutMs = 10_000): Promise<number> {
    return Promise.race([
      this.#exited,
      new Promise<number>((_, reject) => setTimeout(() => reject(new Error(`passtore did not exit; screen:\n${plain(this.transcript).slice(-800)}`)), timeoutMs).unref()),
    ]);
  }

  kill(): void {
    if (this.exitCode === undefined) this.#proc.kill('SIGKILL');
  }
}

export const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
