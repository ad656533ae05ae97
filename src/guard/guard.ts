/**
 * The network guard (SPEC section 7): the vault machine's network is down and its
 * firewall closed; each connection is wrapped in the `[network]` commands: `up`, then
 * `allow` for the one target address and port; after the transfer `revoke`, then `down`,
 * also when the transfer failed. Commands run as argument vectors ({address} and {port}
 * substituted inside words, after the address was checked to be an IP address), never as
 * a shell string. A marker file records what is open, so a guard left open by a crash is
 * closed at the next start of either program.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { splitWords } from '../args.js';
import { PasstoreError } from '../errors.js';

const exec = promisify(execFile);

export interface Target {
  address: string;
  port: number;
}

interface Marker {
  pid: number;
  up: boolean;
  targets: Target[];
}

/** The guard's commands as configured (`[network]`); with none, the guard does nothing. */
export interface GuardCommands {
  up?: string;
  down?: string;
  allow?: string;
  revoke?: string;
}

export class NetworkGuard {
  #open = new Map<string, { target: Target; count: number }>();
  #up = false;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #marker: string;

  constructor(
    private readonly commands: GuardCommands,
    stateDir: string,
  ) {
    this.#marker = join(stateDir, 'guard-open.json');
  }

  /** Whether any command is configured. */
  get configured(): boolean {
    return Boolean(this.commands.up || this.commands.allow);
  }

  /** Opens the path to one target, runs `fn`, and closes it whatever happens. */
  async withAccess<T>(target: Target, fn: () => Promise<T>): Promise<T> {
    await this.open(target);
    try {
      return await fn();
    } finally {
      await this.close(target);
    }
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** `up` (once, for the first target) and `allow` for this target. */
  open(target: Target): Promise<void> {
    checkTarget(target);
    return this.#serial(async () => {
      const key = `${target.address} ${target.port}`;
      const held = this.#open.get(key);
      if (held) {
        held.count++;
        return;
      }
      this.#open.set(key, { target, count: 1 });
      this.#save();
      try {
        if (!this.#up) {
          this.#up = true;
          this.#save();
          await this.#run('up', target);
        }
        await this.#run('allow', target);
      } catch (e) {
        await this.#closeNow(key).catch(() => undefined);
        throw e;
      }
    });
  }

  /** `revoke` for this target, and `down` once nothing is open. */
  close(target: Target): Promise<void> {
    return this.#serial(async () => {
      const key = `${target.address} ${target.port}`;
      const held = this.#open.get(key);
      if (!held) return;
      if (--held.count > 0) return;
      await this.#closeNow(key);
    });
  }

  async #closeNow(key: string): Promise<void> {
    const held = this.#open.get(key);
    let failure: unknown;
    if (held) {
      await this.#run('revoke', held.target).catch((e) => (failure = e));
      this.#open.delete(key);
    }
    if (this.#open.size === 0 && this.#up) {
      await this.#run('down', held?.target).catch((e) => (failure ??= e));
      this.#up = false;
    }
    this.#save();
    if (failure) throw failure;
  }

  async #run(which: keyof GuardCommands, target: Target | undefined): Promise<void> {
    const template = this.commands[which];
    if (!template) return;
    const argv = splitWords(template).map((w) => w.replaceAll('{address}', target?.address ?? '').replaceAll('{port}', String(target?.port ?? '')));
    try {
      await exec(argv[0]!, argv.slice(1), { timeout: 30_000 });
    } catch (e) {
      const err = e as { code?: unknown; stderr?: string };
      const why = (err.stderr ?? '').trim().split('\n')[0] || String(err.code ?? 'failed');
      throw new PasstoreError('io', `network guard: '${which}' command failed: ${why.slice(0, 200)}`);
    }
  }

  #save(): void {
    if (!this.configured) return;
    if (this.#open.size === 0 && !this.#up) {
      rmSync(this.#marker, { force: true });
      return;
    }
    const marker: Marker = { pid: process.pid, up: this.#up, targets: [...this.#open.values()].map((h) => h.target) };
    mkdirSync(join(this.#marker, '..'), { recursive: true, mode: 0o700 });
    writeFileSync(`${this.#marker}.tmp`, JSON.stringify(marker));
    renameSync(`${this.#marker}.tmp`, this.#marker);
  }

  /**
   * Closes what a crashed run left open: `revoke` for each recorded target, then `down`.
   * Returns how many targets were closed (0 when nothing was left open).
   */
  async recover(): Promise<number> {
    if (!existsSync(this.#marker)) return 0;
    let marker: Marker;
    try {
      marker = JSON.parse(readFileSync(this.#marker, 'utf8')) as Marker;
    } catch {
      marker = { pid: 0, up: true, targets: [] };
    }
    if (marker.pid !== process.pid && alive(marker.pid)) return 0; // another program is using it
    for (const t of marker.targets) {
      checkTarget(t);
      await this.#run('revoke', t).catch(() => undefined);
    }
    await this.#run('down', marker.targets[0]).catch(() => undefined);
    rmSync(this.#marker, { force: true });
    return Math.max(marker.targets.length, 1);
  }
}

function alive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function checkTarget(t: Target): void {
  if (!isIP(t.address)) throw new PasstoreError('usage', `network guard: '${t.address}' is not an IP address`);
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw new PasstoreError('usage', `network guard: bad port ${t.port}`);
}
