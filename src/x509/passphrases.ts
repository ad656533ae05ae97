/**
 * Passphrases for what a file locks (encrypted keys, PKCS#12 files), asked at the no-echo
 * prompt once per file. After the first one that works, when more files wait, the
 * operator may keep it for the rest of the run: it is then tried first on each file, and
 * asked for again only where it does not open. The kept passphrase is wiped at the end.
 */
import { PasstoreError } from '../errors.js';
import type { Secret } from '../secret.js';
import { unlock, type FileContents, type Locked } from './pem.js';

export interface PassphraseAsker {
  secret(label: string): Promise<Secret>;
  confirm(question: string): Promise<boolean>;
}

/** What opening one locked file gave: its contents, or why not. */
export type Opened = { ok: true; contents: FileContents } | { ok: false; reason: string };

const WHAT = { pem: 'the encrypted key', pkcs8: 'the encrypted key', pkcs12: 'the PKCS#12 file' } as const;

export class Passphrases {
  #ask: PassphraseAsker | undefined;
  #kept: Secret | undefined;
  #offered = false;

  /** `ask` undefined: from a script, where nothing can be asked. */
  constructor(ask: PassphraseAsker | undefined) {
    this.#ask = ask;
  }

  /**
   * Opens one locked object of `file`; `waiting` is how many more locked files follow
   * (the reuse offer is made only when some do). Never throws for a wrong passphrase: that
   * is a reason in the result.
   */
  async open(file: string, locked: Locked, waiting = 0): Promise<Opened> {
    const what = WHAT[locked.format];
    if (this.#kept) {
      try {
        return { ok: true, contents: unlock(locked, this.#kept.bytes()) };
      } catch (e) {
        if (!(e instanceof PasstoreError) || e.code !== 'bad-passphrase') return { ok: false, reason: reason(e, what) };
      }
    }
    if (!this.#ask) return { ok: false, reason: `${what.replace(/^the /, '')}: its passphrase cannot be asked from a script` };
    const passphrase = await this.#ask.secret(`Passphrase for ${what} in ${file} (empty to skip)`);
    let keep = false;
    try {
      if (passphrase.length === 0) return { ok: false, reason: `${what.replace(/^the /, '')} skipped (no passphrase given)` };
      const contents = unlock(locked, passphrase.bytes());
      if (waiting > 0 && !this.#offered) {
        this.#offered = true;
        keep = await this.#ask.confirm(`Use this passphrase for the ${waiting} other file${waiting === 1 ? '' : 's'} that need one (asked again where it does not fit)?`);
        if (keep) {
          this.#kept?.wipe();
          this.#kept = passphrase;
        }
      }
      return { ok: true, contents };
    } catch (e) {
      return { ok: false, reason: reason(e, what) };
    } finally {
      if (!keep) passphrase.wipe();
    }
  }

  /** Wipes the kept passphrase. */
  close(): void {
    this.#kept?.wipe();
    this.#kept = undefined;
  }
}

function reason(e: unknown, what: string): string {
  return e instanceof PasstoreError ? e.message : `${what.replace(/^the /, '')} not readable`;
}
