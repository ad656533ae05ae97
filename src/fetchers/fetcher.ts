/**
 * CA fetchers: where issued certificates are picked up. Each one turns the open requests
 * into deliveries (bytes that may hold certificates, from a source it names); passtore
 * then stores a certificate only if it matches a pending key and names its host, whatever
 * the source. Every connection goes through the network guard.
 */
import type { Config } from '../config.js';
import type { NetworkGuard } from '../guard/guard.js';
import type { RequestRow } from '../storage/store.js';

export type Outcome = 'stored' | 'refused' | 'ignored';

export interface Delivery {
  /** Where it came from, for messages: a file, a URL, a mail. */
  source: string;
  data: Buffer;
  /** Records what became of it (the dir fetcher moves the file, IMAP marks the mail). */
  settle(outcome: Outcome): Promise<void>;
}

export interface FetchContext {
  config: Config;
  guard: NetworkGuard;
}

export interface Fetcher {
  readonly name: string;
  collect(pending: RequestRow[], ctx: FetchContext): Promise<Delivery[]>;
  /** Called once every delivery is settled. */
  finish?(ctx: FetchContext): Promise<void>;
}
