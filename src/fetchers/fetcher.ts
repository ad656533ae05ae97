/**
 * CA fetchers: where issued certificates are picked up. Each one turns the open requests
 * into deliveries (bytes that may hold certificates, from a source it names); passtore
 * then stores a certificate only if it matches a pending key and names its host, whatever
 * the source. Every connection goes through the network guard.
 */
import { checkTrustedFile } from '../trusted-file.js';
import { readPrivate } from '../private-file.js';
import type { Config } from '../config.js';
import { PasstoreError } from '../errors.js';
import type { NetworkGuard } from '../guard/guard.js';
import type { RequestRow } from '../storage/store.js';

export type Outcome = 'stored' | 'refused' | 'ignored';

export interface Delivery {
  /** Where it came from, for messages: a file, a URL, a mail. */
  source: string;
  data: Buffer;
  /**
   * The CA itself answered an order for this request over an authenticated channel (ACME,
   * its server checked against acme_ca_bundle): the certificate need not chain to
   * `[ca] trust`. Anything else (a drop folder, a mailbox, a URL) must.
   */
  fromCa?: boolean;
  /** Records what became of it (the dir fetcher moves the file, IMAP marks the mail). */
  settle(outcome: Outcome): Promise<void>;
}

export interface FetchContext {
  config: Config;
  guard: NetworkGuard;
  /**
   * Reports one part that failed while the fetcher goes on with the others (a host's
   * download, an order, a mail not read): one failure line of the run. A fetcher that
   * got nothing because everything failed throws instead.
   */
  problem(text: string): void;
}

export interface Fetcher {
  readonly name: string;
  collect(pending: RequestRow[], ctx: FetchContext): Promise<Delivery[]>;
  /** Called once every delivery is settled. */
  finish?(ctx: FetchContext): Promise<void>;
}

/**
 * Reads a file holding a secret named by a `[ca]` key: it must exist, be no link, belong
 * to the running user and be private (private-file.ts), and no directory above it may be
 * writable by others (trusted-file.ts). The bytes are the caller's to wipe.
 */
export function readPrivateFileBytes(file: string, key: string): Buffer {
  const bytes = readPrivate(file, { what: `[ca] ${key}`, code: 'config', chmod: '600' }, 64 * 1024);
  try {
    checkTrustedFile(file, `[ca] ${key}`);
  } catch (e) {
    bytes.fill(0);
    throw e;
  }
  return bytes;
}

/** As readPrivateFileBytes, as text (for a password a library takes as a string). */
export function readPrivateFile(file: string, key: string): string {
  const bytes = readPrivateFileBytes(file, key);
  try {
    return bytes.toString('utf8');
  } finally {
    bytes.fill(0);
  }
}
