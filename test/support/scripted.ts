/**
 * Drives a Session directly, as passtore-cron and the tests do: answers come from a
 * queue the test fills (what an operator would type at the prompts), and output is
 * captured as lines. It is the session's input and output, not a stand-in for a
 * component: the store, the vault and the crypto are the real ones.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Output, Prompter } from '../../src/command.js';
import { defaultConfig, type Config } from '../../src/config.js';
import { Secret } from '../../src/secret.js';
import { Session } from '../../src/session.js';

// Test vaults use a lower scrypt cost; the floor (2^14) still applies.
process.env.PASSTORE_SCRYPT_LOG_N ??= '14';
process.env.PASSTORE_TEST_SWITCHES ??= 'for-tests-only';

export class ScriptedIo implements Prompter, Output {
  answers: string[] = [];
  lines: string[] = [];
  revealed: string[] = [];
  prompts: string[] = [];

  #next(label: string): string {
    this.prompts.push(label);
    const a = this.answers.shift();
    if (a === undefined) throw new Error(`test gave no answer for prompt '${label}'`);
    return a;
  }

  async secret(label: string): Promise<Secret> {
    return Secret.fromString(this.#next(label));
  }

  async confirm(question: string): Promise<boolean> {
    return /^y/i.test(this.#next(question));
  }

  line(text = ''): void {
    this.lines.push(text);
  }

  table(head: string[], rows: string[][]): void {
    this.lines.push(head.join(' | '));
    for (const r of rows) this.lines.push(r.join(' | '));
  }

  progress(): void {}

  paint(text: string): string {
    return text;
  }

  async reveal(label: string, secret: Secret): Promise<void> {
    this.revealed.push(`${label}=${secret.reveal()}`);
  }

  /** Everything printed, one string. */
  text(): string {
    return this.lines.join('\n');
  }
}

export interface TestVault {
  session: Session;
  io: ScriptedIo;
  config: Config;
  dir: string;
  /** Runs a command line, answering its prompts with `answers`; returns the exit status. */
  run(line: string, ...answers: string[]): Promise<number>;
  /** Opens another session on the same store (another operator, a restart). */
  reopen(operator?: string, passphrase?: string): Promise<TestVault>;
  close(): Promise<void>;
}

export const PASSPHRASE = 'test passphrase one';

/** Runs a command line that must succeed (exit status 0); returns what it printed. */
export async function runOk(tv: Pick<TestVault, 'io' | 'run'>, line: string, ...answers: string[]): Promise<string> {
  const before = tv.io.lines.length;
  const status = await tv.run(line, ...answers);
  const out = tv.io.lines.slice(before).join('\n');
  assert.equal(status, 0, `${line}:\n${out}`);
  return out;
}

/**
 * Creates a vault on SQLite (in a temp dir) or on `db`, unlocked by `operator`.
 * `terminal` makes the session behave as on a terminal (reveals allowed).
 */
export async function createTestVault(options: { db?: string; dbPasswordFile?: string; operator?: string; terminal?: boolean; domain?: string } = {}): Promise<TestVault> {
  const dir = mkdtempSync(join(tmpdir(), 'passtore-test-'));
  const config: Config = {
    ...defaultConfig(),
    domain: options.domain ?? 'example.org',
    db: options.db ?? `sqlite:${join(dir, 'vault.db')}`,
    dbPasswordFile: options.dbPasswordFile,
    operator: options.operator ?? 'alice',
  };
  const tv = await openTestVault(config, dir, options.terminal ?? true);
  tv.io.answers.push(PASSPHRASE, PASSPHRASE);
  await tv.session.createVault();
  return tv;
}

async function openTestVault(config: Config, dir: string, terminal: boolean, operator?: string): Promise<TestVault> {
  const io = new ScriptedIo();
  const session = await Session.open({ config, prompt: io, out: io, terminal, operator, unlock: { failureDelayMs: 10 }, stateDir: dir });
  const tv: TestVault = {
    session,
    io,
    config,
    dir,
    async run(line, ...answers) {
      io.answers.push(...answers);
      const status = await session.execute(line);
      io.answers.length = 0;
      return status;
    },
    async reopen(op, passphrase = PASSPHRASE) {
      const other = await openTestVault(config, dir, terminal, op);
      other.io.answers.push(passphrase);
      await other.session.unlock(1);
      return other;
    },
    async close() {
      await session.close();
    },
  };
  return tv;
}

/** Removes a test vault's temp dir (after every session on it is closed). */
export function removeTestDir(tv: TestVault): void {
  rmSync(tv.dir, { recursive: true, force: true });
}
