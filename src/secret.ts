/**
 * The plaintext secret type. A Secret holds its bytes in a Buffer that is zeroed by
 * `wipe()`; every way of printing it (`toString`, `toJSON`, `util.inspect`, template
 * strings) gives `[redacted]`. Only the vault turns a Secret into ciphertext and back,
 * and only `reveal()` (used by the no-echo display) reads its text.
 */
import { inspect } from 'node:util';
import { randomInt } from 'node:crypto';

const REDACTED = '[redacted]';

export class Secret {
  #bytes: Buffer;
  #wiped = false;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** Takes ownership of `bytes` (the caller must not keep or reuse them). */
  static fromBytes(bytes: Buffer): Secret {
    return new Secret(bytes);
  }

  /** Copies a string into a new Secret. Strings cannot be wiped: keep them short-lived. */
  static fromString(text: string): Secret {
    return new Secret(Buffer.from(text, 'utf8'));
  }

  /**
   * A random password of `length` characters drawn uniformly from a 69-symbol alphabet:
   * log2(69) = 6.11 bits each, about 146 bits for the default 24.
   */
  static generate(length = 24): Secret {
    const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.,:;+=%@#!';
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = alphabet.charCodeAt(randomInt(alphabet.length));
    return new Secret(out);
  }

  get length(): number {
    return this.#bytes.length;
  }

  get wiped(): boolean {
    return this.#wiped;
  }

  /** The raw bytes, for the vault's cipher and for the display. Do not keep them. */
  bytes(): Buffer {
    if (this.#wiped) throw new Error('secret used after wipe');
    return this.#bytes;
  }

  /** The text, for the display that shows it and for SSH logins. Do not keep it. */
  reveal(): string {
    return this.bytes().toString('utf8');
  }

  /** Constant-time comparison with another secret. */
  equals(other: Secret): boolean {
    const a = this.bytes();
    const b = other.bytes();
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
    return diff === 0;
  }

  /** Zeroes the bytes; the Secret is unusable afterwards. */
  wipe(): void {
    this.#bytes.fill(0);
    this.#wiped = true;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/** Wipes every given secret, ignoring undefined ones. */
export function wipeAll(...secrets: Array<Secret | undefined>): void {
  for (const s of secrets) s?.wipe();
}
