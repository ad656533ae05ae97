/**
 * The terminal side of the session: no-echo prompts, confirmations, the revealed
 * password that erases itself, tables and progress lines.
 *
 * No-echo input works by taking the `keypress` listeners off standard input (so the
 * REPL's readline sees none of the keys, and a secret never reaches its line buffer or
 * history), reading the keys here into a wipeable buffer, and putting the listeners back.
 */
import { spawnSync } from 'node:child_process';
import { emitKeypressEvents } from 'node:readline';
import { splitWords } from '../args.js';
import { Chalk } from 'chalk';
import type { Output, Prompter, TableOptions, Tone } from '../command.js';
import { randomBytes } from 'node:crypto';
import { PasstoreError } from '../errors.js';
import { terminalSafe } from '../names.js';
import { Secret } from '../secret.js';
import { renderTable, visibleWidth, wrapWords } from './table.js';

interface Key {
  name?: string;
  ctrl?: boolean;
  meta?: boolean;
  sequence?: string;
}

type KeyHandler = (str: string | undefined, key: Key) => boolean | void;

const MAX_SECRET = 1024;

/** Chalk honouring NO_COLOR and the terminal's abilities. */
export function makeChalk(stream: NodeJS.WriteStream): InstanceType<typeof Chalk> {
  const level = process.env.NO_COLOR || !stream.isTTY ? 0 : Math.min(stream.getColorDepth() >= 8 ? 2 : 1, 3);
  return new Chalk({ level: level as 0 | 1 | 2 | 3 });
}

export class Terminal implements Prompter, Output {
  readonly chalk: InstanceType<typeof Chalk>;
  /**
   * The escape introducer of this program's own colours: ESC and a random word no outside
   * text can know. Only it becomes a real ESC when a line is written; every other control
   * character is shown escaped (terminalSafe).
   */
  readonly #own = `\x1b${randomBytes(9).toString('base64url')}`;
  #lastInput = Date.now();
  #progressShown = false;
  /** The key handler of the prompt reading keys now (secret, confirm, reveal). */
  #reading: ((str: string | undefined, key: Key) => void) | undefined;
  /** Set by stopPrompts: every prompt, now and later, ends as a Ctrl-C would end it. */
  #stopped = false;

  constructor(
    readonly input: NodeJS.ReadStream,
    readonly output: NodeJS.WriteStream,
    private readonly revealSeconds: number,
  ) {
    emitKeypressEvents(input);
    this.chalk = makeChalk(output);
    input.on('keypress', this.#touch);
  }

  #touch = (): void => {
    this.#lastInput = Date.now();
  };

  /** Milliseconds since the operator last pressed a key. */
  idleFor(): number {
    return Date.now() - this.#lastInput;
  }

  /**
   * SIGHUP or SIGTERM: the prompt waiting now ends as Ctrl-C ends it (a secret prompt is
   * cancelled, a y/N question answered no, a shown password cleared), and so does any
   * asked after, so that the command aborted with it ends at once instead of waiting
   * for keys no one will type.
   */
  stopPrompts(): void {
    this.#stopped = true;
    this.#reading?.(undefined, { ctrl: true, name: 'c' });
  }

  /** Takes every keypress until `handler` returns true; readline sees none of them. */
  #readKeys(handler: KeyHandler, timeoutMs?: number): Promise<void> {
    if (this.#stopped) {
      try {
        handler(undefined, { ctrl: true, name: 'c' });
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const { input } = this;
    const saved = input.listeners('keypress') as Array<(...a: unknown[]) => void>;
    input.removeAllListeners('keypress');
    const wasRaw = input.isRaw;
    const wasPaused = input.isPaused();
    input.setRawMode(true);
    input.resume();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (err?: unknown) => {
        if (timer) clearTimeout(timer);
        this.#reading = undefined;
        input.removeListener('keypress', onKey);
        for (const l of saved) input.on('keypress', l);
        try {
          input.setRawMode(wasRaw);
        } catch {
          // A terminal that hung up (SIGHUP) has no mode to set back.
        }
        if (wasPaused) input.pause();
        this.#touch();
        if (err) reject(err);
        else resolve();
      };
      const onKey = (str: string | undefined, key: Key = {}) => {
        try {
          if (handler(str, key)) finish();
        } catch (e) {
          finish(e);
        }
      };
      input.on('keypress', onKey);
      this.#reading = onKey;
      if (timeoutMs) timer = setTimeout(() => finish(), timeoutMs);
    });
  }

  async secret(label: string): Promise<Secret> {
    this.#endProgress();
    this.output.write(`${this.#safe(label)}: `);
    const buf = Buffer.alloc(MAX_SECRET);
    let len = 0;
    try {
      await this.#readKeys((str, key) => {
        if (key.ctrl && (key.name === 'c' || key.name === 'd')) throw new PasstoreError('cancelled', 'cancelled');
        if (key.name === 'return' || key.name === 'enter') return true;
        if (key.name === 'backspace') {
          // Drop the last UTF-8 character.
          do len--;
          while (len > 0 && (buf[len]! & 0xc0) === 0x80);
          len = Math.max(len, 0);
          return false;
        }
        if (key.ctrl && key.name === 'u') {
          buf.fill(0, 0, len);
          len = 0;
          return false;
        }
        if (!str || key.ctrl || key.meta || (str.length === 1 && str.charCodeAt(0) < 0x20)) return false;
        const bytes = Buffer.from(str, 'utf8');
        if (len + bytes.length <= MAX_SECRET) {
          bytes.copy(buf, len);
          len += bytes.length;
        }
        bytes.fill(0);
        return false;
      });
    } catch (e) {
      buf.fill(0);
      this.output.write('\n');
      throw e;
    }
    this.output.write('\n');
    const secret = Secret.fromBytes(Buffer.from(buf.subarray(0, len)));
    buf.fill(0);
    return secret;
  }

  async confirm(question: string): Promise<boolean> {
    this.#endProgress();
    this.output.write(`${this.#safe(question)} [y/N] `);
    let answer = '';
    await this.#readKeys((str, key) => {
      if (key.ctrl && (key.name === 'c' || key.name === 'd')) {
        answer = '';
        return true;
      }
      if (key.name === 'return' || key.name === 'enter') return true;
      if (key.name === 'backspace') {
        if (answer) {
          answer = answer.slice(0, -1);
          this.output.write('\b \b');
        }
        return false;
      }
      if (str && str.length === 1 && str >= ' ' && answer.length < 8) {
        answer += str;
        this.output.write(str);
      }
      return false;
    });
    this.output.write('\n');
    return /^(y|yes)$/i.test(answer.trim());
  }

  /** The terminal's width in columns (80 when it does not say). */
  get columns(): number {
    return this.output.columns || 80;
  }

  line(text = ''): void {
    this.#endProgress();
    this.output.write(`${this.#safe(text)}\n`);
  }

  /** Everything shown goes through here: outside text is escaped, own colours kept. */
  #safe(text: string, lines = false): string {
    return terminalSafe(text, { lines, own: this.#own });
  }

  /** Prose (help text): wrapped between words to the terminal's width, its indent kept. */
  text(paragraph: string): void {
    this.#endProgress();
    paragraph = this.#safe(paragraph);
    if (visibleWidth(paragraph) < this.columns) {
      this.output.write(`${paragraph}\n`);
      return;
    }
    const indent = /^\s*/.exec(paragraph)![0];
    const lines = wrapWords(paragraph.slice(indent.length), this.columns - 1 - indent.length, '  ');
    this.output.write(`${lines.map((l) => indent + l).join('\n')}\n`);
  }

  /**
   * A table fitted to the width. One taller than the screen goes through the pager, as
   * git does: `$PAGER` (default `less` with LESS=FRX when LESS is unset), run as an
   * argument vector; PAGER=cat or an empty PAGER turns it off. Tables never hold a secret
   * (a secret is shown only by `reveal`, which never pages).
   */
  table(head: string[], rows: string[][], options?: TableOptions): void {
    this.#endProgress();
    // Outside text is escaped before it is measured; only this program's colours stay.
    head = head.map((h) => this.#safe(h));
    rows = rows.map((r) => r.map((c) => this.#safe(c)));
    const lines = renderTable(head, rows, this.columns, options, (s) => this.chalk.bold(s));
    lines.push('');
    const text = lines.join('\n');
    if (lines.length > (this.output.rows || 24) && this.output.isTTY && this.#page(text)) return;
    this.output.write(text);
  }

  /** Shows `text` through the pager; false when there is none to run. */
  #page(text: string): boolean {
    const pager = process.env.PAGER ?? 'less';
    let argv: string[];
    try {
      argv = splitWords(pager);
    } catch {
      return false;
    }
    if (argv.length === 0 || argv[0] === 'cat') return false;
    // The pager reads the keys from the terminal itself; the event loop (and so the
    // REPL's reading) is held until it ends.
    const r = spawnSync(argv[0]!, argv.slice(1), { input: text, stdio: ['pipe', 'inherit', 'inherit'], env: { ...process.env, LESS: process.env.LESS ?? 'FRX' } });
    return !r.error;
  }

  paint(text: string, tone: Tone): string {
    const style = tone === 'bad' ? this.chalk.red : tone === 'warn' ? this.chalk.yellow : this.chalk.green;
    // Only the colour codes chalk makes get the own marker; an ESC inside `text` does not.
    const [open = '', close = ''] = style('\u0000').split('\u0000').map((c) => c.split('\x1b').join(this.#own));
    return `${open}${text}${close}`;
  }

  progress(text: string): void {
    this.output.write(`\r\x1b[2K${this.#safe(text)}`);
    this.#progressShown = true;
  }

  #endProgress(): void {
    if (this.#progressShown) this.output.write('\r\x1b[2K');
    this.#progressShown = false;
  }

  /**
   * Shows the password on one line with no newline after it, then waits for a key or the
   * timeout, and erases every screen row that line took. The key is swallowed.
   */
  async reveal(label: string, secret: Secret): Promise<void> {
    this.#endProgress();
    const shown = `${this.#safe(label)}  ${secret.reveal()}   (any key or ${this.revealSeconds} s clears it)`;
    this.output.write(shown);
    const columns = this.output.columns || 80;
    const rows = Math.max(1, Math.ceil(shown.length / columns));
    try {
      await this.#readKeys(() => true, this.revealSeconds * 1000);
    } finally {
      this.output.write(`\r${rows > 1 ? `\x1b[${rows - 1}A` : ''}\x1b[J`);
      this.output.write(`${this.#safe(label)}  password shown and cleared\n`);
    }
  }
}
