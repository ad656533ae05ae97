/**
 * The ciphertext type. Storage functions take and return only Ciphertext, never a
 * Secret or a Buffer, so handing plaintext to the database does not compile. Only the
 * vault's cipher (`aead.ts`) makes new ones; storage wraps the bytes it reads back.
 */
export class Ciphertext {
  /** The stored bytes: format version, nonce, tag, encrypted data. */
  readonly bytes: Buffer;
  readonly #brand = 'ciphertext';

  private constructor(bytes: Buffer) {
    this.bytes = bytes;
  }

  /** For the cipher, after encrypting. */
  static sealed(bytes: Buffer): Ciphertext {
    return new Ciphertext(bytes);
  }

  /** For storage, when reading a *_ciphertext column back. */
  static fromStorage(bytes: Buffer | Uint8Array): Ciphertext {
    return new Ciphertext(Buffer.from(bytes));
  }

  get brand(): string {
    return this.#brand;
  }
}
