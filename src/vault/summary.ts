/**
 * The sealed summary of what is current, kept in the vault row (schema 12). Storage is
 * untrusted: whoever can write the database but holds no key could otherwise set one
 * entry back to an older version (its old ciphertext still authenticates, bound to that
 * version) or put back an older vault row.
 *
 * The summary seals together, under an HMAC with the summary key (HKDF of the audit key,
 * so it survives every rekey as the audit key does): the vault id, a change counter that
 * only moves forward (under the vault row's lock), the data key and root key generations,
 * the sealed head of the audit trail, and a digest of every entry's name, version and
 * state. The digest is the sum (mod 2^256) of one HMAC per entry: a change to one entry
 * subtracts its old HMAC and adds its new one, so it costs the same with 10 or 10,000
 * entries; a check recomputes it from one query of names and versions (no ciphertext).
 * The names of the last entries changed are kept in it too, so a rolled-back entry among
 * them is named.
 *
 * It moves inside the transaction of each change: `vault.transaction` (every entry
 * written, through `tracking` below), `rekey`, and each sealed audit record (audit.ts).
 * The copy of the vault's state kept on the vault machine and in backups (rollback.ts)
 * carries the counter, so a whole database put back is caught there.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { PasstoreError } from '../errors.js';
import type { EntryStamp, Store, VaultRow } from '../storage/store.js';
import { EntryTagger, stampText, TagSum } from './entry-tags.js';
import { hkdf32 } from './hkdf.js';
import { parseKeyring } from './keyring.js';

/** How many of the latest entry changes the summary names. */
export const RECENT = 64;
const MOD = 1n << 256n;

export interface Summary {
  v: 1;
  /** Moves forward by one with each change sealed into the summary. */
  counter: number;
  dataKeyGeneration: number;
  rootGeneration: number;
  /** The sealed audit head: newest sealed record, its hash, how many sealed records. */
  head: { seq: number; hash: string; sealed: number };
  /** Sum of the entries' HMACs, mod 2^256 (hex). */
  digest: string;
  entries: number;
  /** The latest entries changed, oldest first: spec, version (null: removed). */
  recent: Array<[string, number | null]>;
  at: string;
  mac: string;
}

/** The key that seals the summary: a subkey of the audit key (the caller wipes it). */
export function summaryKey(auditKey: Buffer, vaultId: string): Buffer {
  return hkdf32(auditKey, Buffer.from(vaultId), 'passtore summary');
}

const specOf = (s: Pick<EntryStamp, 'fqdn' | 'user' | 'service'>) => `${s.user}@${s.fqdn}:${s.service}`;

/** The digest of `stamps` (a sum of the HMACs of their stamp texts, mod 2^256; entry-tags.ts). */
export function digestOf(key: Buffer, stamps: EntryStamp[]): bigint {
  return digestOfTexts(key, stamps.map(stampText));
}

/** The digest of entries given by their stamp texts (`stampText`, `Store.entryStampTexts`). */
export function digestOfTexts(key: Buffer, texts: string[]): bigint {
  const tagger = new EntryTagger(key);
  try {
    const sum = new TagSum();
    const scratch = new Uint32Array(8);
    for (const t of texts) sum.add(tagger.tag(t, scratch));
    return sum.value();
  } finally {
    tagger.wipe();
  }
}

const hex = (n: bigint) => n.toString(16).padStart(64, '0');

function body(vaultId: string, s: Omit<Summary, 'mac'>): string {
  return JSON.stringify(['passtore summary 1', vaultId, s.counter, s.dataKeyGeneration, s.rootGeneration, s.head.seq, s.head.hash, s.head.sealed, s.digest, s.entries, s.recent, s.at]);
}

function macOf(key: Buffer, vaultId: string, s: Omit<Summary, 'mac'>): string {
  return createHmac('sha256', key).update(body(vaultId, s)).digest('hex');
}

/** The head fields of the vault row's sealed audit head (its own seal is checked by audit.ts and rollback.ts). */
function headFields(text: string | null | undefined): Summary['head'] {
  if (!text) return { seq: 0, hash: '', sealed: 0 };
  try {
    const h = JSON.parse(text) as Summary['head'];
    return { seq: Number(h.seq), hash: String(h.hash), sealed: Number(h.sealed) };
  } catch {
    return { seq: -1, hash: 'unreadable', sealed: -1 };
  }
}

/** The summary in `row`, its seal checked: undefined when there is none yet, 'bad' when its seal fails. */
export function readSummary(row: VaultRow, key: Buffer): Summary | undefined | 'bad' {
  if (!row.summary) return undefined;
  try {
    const s = JSON.parse(row.summary) as Summary;
    if (s.v !== 1 || typeof s.mac !== 'string' || !Number.isInteger(s.counter) || !s.head || !Array.isArray(s.recent)) return 'bad';
    const want = Buffer.from(macOf(key, row.id, s), 'hex');
    const got = Buffer.from(s.mac, 'hex');
    return got.length === want.length && timingSafeEqual(got, want) ? s : 'bad';
  } catch {
    return 'bad';
  }
}

/** The change counter of a row's summary as stored (unchecked: for the copy kept outside, which checks itself). */
export function counterOf(row: VaultRow): number | undefined {
  try {
    const c = row.summary ? (JSON.parse(row.summary) as Summary).counter : undefined;
    return Number.isInteger(c) ? c : undefined;
  } catch {
    return undefined;
  }
}

/** What changed among the entries in one transaction: their stamps before and after. */
export interface EntryChanges {
  removed: EntryStamp[];
  added: EntryStamp[];
}

/**
 * The next summary, as JSON, for `row` (read with its lock inside the change's
 * transaction) after `changes`, with the audit head `headText` (default: the row's).
 * With no summary yet (a new vault), it is computed from every entry in `tx`. Undefined
 * when the stored one has a bad seal: it is left for the check to report.
 */
export async function nextSummary(tx: Store, auditKey: Buffer, row: VaultRow, changes?: EntryChanges, headText?: string | null): Promise<string | undefined> {
  const key = summaryKey(auditKey, row.id);
  try {
    const old = readSummary(row, key);
    if (old === 'bad') return undefined;
    let digest: bigint;
    let entries: number;
    let recent: Summary['recent'];
    if (old === undefined) {
      const all = await tx.entryStamps();
      digest = digestOf(key, all);
      entries = all.length;
      recent = [];
    } else {
      digest = BigInt(`0x${old.digest}`);
      entries = old.entries;
      recent = old.recent;
      if (changes) {
        digest = (digest + MOD - digestOf(key, changes.removed) + digestOf(key, changes.added)) % MOD;
        entries += changes.added.length - changes.removed.length;
        const before = new Map(changes.removed.map((s) => [specOf(s), s]));
        const after = new Map(changes.added.map((s) => [specOf(s), s]));
        const changed: Summary['recent'] = [];
        for (const [spec, s] of after) {
          const b = before.get(spec);
          if (!b || b.version !== s.version || b.state !== s.state) changed.push([spec, s.version]);
        }
        for (const spec of before.keys()) if (!after.has(spec)) changed.push([spec, null]);
        const names = new Set(changed.map(([n]) => n));
        recent = [...recent.filter(([n]) => !names.has(n)), ...changed].slice(-RECENT);
      }
    }
    const s: Omit<Summary, 'mac'> = {
      v: 1,
      counter: (old?.counter ?? 0) + 1,
      dataKeyGeneration: row.dataKeyGeneration,
      rootGeneration: parseKeyring(row.keyring)?.rootGeneration ?? 1,
      head: headFields(headText === undefined ? row.auditHead : headText),
      digest: hex(digest),
      entries,
      recent,
      at: new Date().toISOString(),
    };
    return JSON.stringify({ ...s, mac: macOf(key, row.id, s) });
  } finally {
    key.fill(0);
  }
}

/** Seals the summary after `changes` inside the change's transaction (the vault row is locked here). */
export async function advanceSummary(tx: Store, auditKey: Buffer, changes?: EntryChanges): Promise<void> {
  const row = await tx.getVault(true);
  if (!row) return;
  const next = await nextSummary(tx, auditKey, row, changes);
  if (next !== undefined) await tx.setSummary(next);
}

const integrity = (what: string) => new PasstoreError('integrity', `integrity error: ${what}; nothing is shown`);

/**
 * Checks the summary in the database against what is current there: its seal, the key
 * generations and audit head in the vault row, no sealed audit record newer than its head,
 * and the digest of every entry. Returns the summary (undefined when there is none yet);
 * anything else is an integrity error naming what was rolled back. Stateless: a session
 * uses a `SummaryCheck`, which gives the same answers for less.
 */
export async function verifySummary(store: Store, auditKey: Buffer): Promise<Summary | undefined> {
  // One transaction: the vault row, the trail and the entries are read as of one moment
  // (MariaDB: one consistent snapshot, no locks; SQLite: serial), never half of another
  // session's change.
  return store.transaction(async (tx) => {
    const row = await tx.getVault();
    if (!row) throw new PasstoreError('integrity', 'the vault record is gone');
    const key = summaryKey(auditKey, row.id);
    try {
      const s = await checkRecord(tx, key, row);
      if (s === undefined) return undefined;
      if (hex(digestOfTexts(key, await tx.entryStampTexts())) !== s.digest) await refuseEntries(tx, s);
      return s;
    } finally {
      key.fill(0);
    }
  });
}

/** The vault record's part of the check (every part but the entries' digest): the summary, or undefined when there is none yet. */
async function checkRecord(store: Store, key: Buffer, row: VaultRow): Promise<Summary | undefined> {
  const s = readSummary(row, key);
  if (s === undefined) return undefined;
  if (s === 'bad') throw integrity('the summary of what is current in the vault record has a bad seal: the vault record was altered');
  const rootGeneration = parseKeyring(row.keyring)?.rootGeneration ?? 1;
  if (row.dataKeyGeneration !== s.dataKeyGeneration || rootGeneration !== s.rootGeneration) {
    throw integrity(`the vault record was rolled back: a rekey was undone (data key generation ${row.dataKeyGeneration}, root key generation ${rootGeneration}; the summary of what is current seals generation ${s.dataKeyGeneration}, ${s.rootGeneration})`);
  }
  const head = headFields(row.auditHead);
  if (head.seq !== s.head.seq || head.hash !== s.head.hash || head.sealed !== s.head.sealed) {
    throw integrity(`the vault record was rolled back: its audit head names sealed record ${head.seq}, the summary of what is current seals record ${s.head.seq}`);
  }
  // A plain read (no lock: this runs beside other sessions' changes). Only failed
  // unlocks follow the head unsealed; any sealed record after it means an older head.
  const later = (await store.auditAfter(s.head.seq, 1000)).find((r) => r.mac !== null);
  if (later) {
    throw integrity(`the vault record was rolled back: audit record ${later.seq} is sealed but newer than its audit head (record ${s.head.seq})`);
  }
  return s;
}

/** The entries do not add up to the summary's digest: refused, naming what the summary knows. */
async function refuseEntries(store: Store, s: Summary): Promise<never> {
  throw integrity(`an entry was rolled back with SQL: ${describeEntries(s, await store.entryStamps())}`);
}

/**
 * Every entry's stamp read at the start of a transaction that is held open until a check
 * runs in it (`SummaryCheck.check(store, held)`), or `abort()`. An unlock on MariaDB starts
 * one as the key derivation starts (about 0.35 s in which the program waits): the stamps
 * come over the network meanwhile, and the check made once the key is there reads the
 * vault record and the trail in the same transaction, so in the same snapshot (InnoDB's
 * repeatable read: the one taken by its first read). The check is then of that moment,
 * a fraction of a second before; the checks before each command that follows read their
 * own. Not for SQLite, whose one connection the transaction would hold.
 */
export class HeldStamps {
  #release!: (job: ((tx: Store, texts: string[]) => Promise<unknown>) | undefined) => void;
  #done: Promise<unknown>;

  constructor(store: Store) {
    const gate = new Promise<((tx: Store, texts: string[]) => Promise<unknown>) | undefined>((resolve) => (this.#release = resolve));
    this.#done = store.transaction(async (tx) => {
      const texts = await tx.entryStampTexts();
      const job = await gate;
      return job ? job(tx, texts) : undefined;
    });
    // A failure is the check's to report (or nobody's, when it is aborted).
    this.#done.catch(() => undefined);
  }

  /** Runs `job` in the held transaction with the stamps read; once. */
  run<T>(job: (tx: Store, texts: string[]) => Promise<T>): Promise<T> {
    this.#release(job);
    return this.#done as Promise<T>;
  }

  /** Ends the transaction unused (a wrong passphrase, a failure before the check); harmless after `run`. */
  abort(): void {
    this.#release(undefined);
  }
}

/**
 * The summary check of one unlocked session: the same verdicts as `verifySummary`, for
 * less, without trusting anything the database says more than it does.
 *
 * - Each entry's HMAC is kept, keyed by the exact text it was computed from (name,
 *   version, state): a full check re-reads every stamp but computes HMACs only for texts
 *   not seen before. The HMAC is a function of that text and the key alone, so a kept one
 *   is the one that would be computed.
 * - On SQLite, `PRAGMA data_version` (read in the check's own transaction) changes when
 *   any other connection, in any process, commits to the database. While it is the one
 *   read at this session's last full check that passed, every commit since was this
 *   session's own, made through `vault.transaction` and the audit trail, which move the
 *   summary with each entry they write: the entries still add up to the digest, and are
 *   not read again. The vault record's part is checked every time all the same. MariaDB
 *   has no such number that its administrator (the one this check is about) cannot move
 *   or reset, so there every check reads every stamp.
 * - The summary's change counter never goes back within a session: a vault record older
 *   than one this session already checked (the whole database put back under a running
 *   session) is refused.
 *
 * A check that fails records nothing: the next one is a full one again.
 */
export class SummaryCheck {
  readonly #vaultId: string;
  #key: Buffer;
  #tagger: EntryTagger;
  /** Each stamp text's tag, as computed: where its eight words are in `#pool`. */
  #tags = new Map<string, number>();
  /** The first check's texts, each tag at its place in `#pool`, not yet in `#tags`. */
  #unindexed: string[] | undefined;
  /** How many tags `#pool` holds (one per text computed: a text listed twice at first has two). */
  #used = 0;
  #pool = new Uint32Array(8 * 1024);
  /** SQLite's data_version at the last full check that passed (undefined: none, or MariaDB). */
  #dataVersion: number | undefined;
  /** The highest change counter this session checked. */
  #counter = 0;
  #queue: Promise<unknown> = Promise.resolve();
  /** How many checks read every entry (passed or not), and how many did not need to (for tests and benchmarks). */
  readonly counts = { full: 0, skipped: 0 };

  /** `auditKey` is not kept: only the summary key derived from it, wiped by `wipe()`. */
  constructor(auditKey: Buffer, vaultId: string) {
    this.#vaultId = vaultId;
    this.#key = summaryKey(auditKey, vaultId);
    this.#tagger = new EntryTagger(this.#key);
  }

  /**
   * Checks the summary in `store` (as `verifySummary`); returns it, undefined when there is
   * none yet. `held`: in that transaction, with the stamps it read (a full check).
   */
  check(store: Store, held?: HeldStamps): Promise<Summary | undefined> {
    // One at a time: a check that read an earlier moment must not finish after a later one
    // (its counter would look older than the one this session already checked).
    const next = this.#queue.then(() => (held ? held.run((tx, texts) => this.#checkIn(tx, texts)) : store.transaction((tx) => this.#checkIn(tx))));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #checkIn(tx: Store, read?: string[]): Promise<Summary | undefined> {
    const row = await tx.getVault();
    if (!row) throw new PasstoreError('integrity', 'the vault record is gone');
    if (row.id !== this.#vaultId) throw integrity('the vault record is another vault\'s');
    const dataVersion = await tx.dataVersion();
    const s = await checkRecord(tx, this.#key, row);
    if (s === undefined) return undefined;
    if (s.counter < this.#counter) {
      throw integrity(`the vault record was rolled back: the summary of what is current is at change ${s.counter}, this session already checked change ${this.#counter}`);
    }
    if (!read && dataVersion !== undefined && dataVersion === this.#dataVersion) {
      this.counts.skipped++;
      this.#counter = Math.max(this.#counter, s.counter);
      return s;
    }
    const texts = read ?? (await tx.entryStampTexts());
    this.counts.full++;
    if (hex(this.#digest(texts)) !== s.digest) await refuseEntries(tx, s);
    this.#dataVersion = dataVersion;
    this.#counter = Math.max(this.#counter, s.counter);
    return s;
  }

  #digest(texts: string[]): bigint {
    if (this.#used === 0) return this.#firstDigest(texts);
    if (this.#unindexed) {
      // The first check's tags, indexed now (at unlock that waited: about 5 ms at 30,000).
      this.#unindexed.forEach((t, i) => this.#tags.set(t, 8 * i));
      this.#unindexed = undefined;
    }
    // Tags of texts no longer current (earlier versions) are let go once they outnumber the current ones.
    if (this.#used > 2 * texts.length + 1024) {
      this.#tags.clear();
      this.#used = 0;
    }
    if (this.#pool.length < 8 * (this.#used + texts.length)) {
      const bigger = new Uint32Array(16 * (this.#used + texts.length));
      bigger.set(this.#pool);
      this.#pool.fill(0);
      this.#pool = bigger;
    }
    const sum = new TagSum();
    for (const t of texts) {
      let at = this.#tags.get(t);
      if (at === undefined) {
        at = 8 * this.#used++;
        this.#tagger.tag(t, this.#pool, at);
        this.#tags.set(t, at);
      }
      sum.add(this.#pool, at);
    }
    return sum.value();
  }

  /** The first check's digest: each tag kept at its text's place in `texts`, indexed at the next check. */
  #firstDigest(texts: string[]): bigint {
    if (this.#pool.length < 8 * texts.length) this.#pool = new Uint32Array(16 * texts.length);
    const sum = new TagSum();
    texts.forEach((t, i) => {
      this.#tagger.tag(t, this.#pool, 8 * i);
      sum.add(this.#pool, 8 * i);
    });
    this.#unindexed = texts;
    this.#used = texts.length;
    return sum.value();
  }

  /** Forgets everything: the key, its midstates and the tags (at lock). */
  wipe(): void {
    this.#key.fill(0);
    this.#tagger.wipe();
    this.#tags.clear();
    this.#unindexed = undefined;
    this.#used = 0;
    this.#pool.fill(0);
    this.#dataVersion = undefined;
  }
}

/** Names what differs between the summary and the entries found, as far as the summary knows names. */
function describeEntries(s: Summary, stamps: EntryStamp[]): string {
  const now = new Map(stamps.map((e) => [specOf(e), e]));
  const what: string[] = [];
  for (const [spec, version] of [...s.recent].reverse()) {
    const e = now.get(spec);
    if (version === null && e) what.push(`entry ${spec} was removed but is back (version ${e.version})`);
    else if (version !== null && !e) what.push(`entry ${spec} (version ${version}) is gone`);
    else if (version !== null && e && e.version < version) what.push(`entry ${spec} went back from version ${version} to version ${e.version}`);
    else if (version !== null && e && e.version > version) what.push(`entry ${spec} is at version ${e.version}, not ${version}`);
    if (what.length >= 3) break;
  }
  if (what.length === 0) {
    what.push(stamps.length !== s.entries ? `the vault holds ${stamps.length} entries, its summary seals ${s.entries}` : `one of the ${stamps.length} entries is not at the version or state its summary seals (an entry changed before the last ${RECENT} changes)`);
  }
  return what.join('; ');
}

/** Wraps a transaction's store so that every entry it writes is seen (for `advanceSummary`). */
export function tracking(tx: Store): { store: Store; changes(): Promise<EntryChanges | undefined> } {
  const old = new Map<number, EntryStamp>();
  const ids = new Set<number>();
  const hosts = new Set<number>();
  let touched = false;
  const snapIds = async (list: number[]) => {
    touched = true;
    const need = [...new Set(list)].filter((id) => !ids.has(id));
    need.forEach((id) => ids.add(id));
    if (need.length === 0) return;
    // An entry on a host already taken whole was not there before (it was inserted since).
    for (const s of await tx.entryStamps({ ids: need })) if (!old.has(s.id) && !hosts.has(s.hostId)) old.set(s.id, s);
  };
  const snapHosts = async (list: number[]) => {
    touched = true;
    const need = [...new Set(list)].filter((id) => !hosts.has(id));
    if (need.length === 0) return;
    const before = await tx.entryStamps({ hostIds: need });
    need.forEach((id) => hosts.add(id));
    for (const s of before) if (!old.has(s.id)) old.set(s.id, s);
  };
  const wrapped: Store = new Proxy(tx, {
    get(target, prop, receiver) {
      switch (prop) {
        case 'insertEntry':
          return async (row: Parameters<Store['insertEntry']>[0]) => {
            await snapHosts([row.hostId]);
            return target.insertEntry(row);
          };
        case 'insertEntries':
          return async (rows: Parameters<Store['insertEntries']>[0]) => {
            await snapHosts(rows.map((r) => r.hostId));
            return target.insertEntries(rows);
          };
        case 'updateEntry':
          return async (...a: Parameters<Store['updateEntry']>) => {
            await snapIds([a[0]]);
            return target.updateEntry(...a);
          };
        case 'updateEntries':
          return async (updates: Parameters<Store['updateEntries']>[0]) => {
            await snapIds(updates.map((u) => u.id));
            return target.updateEntries(updates);
          };
        case 'deleteEntry':
          return async (id: number) => {
            await snapIds([id]);
            return target.deleteEntry(id);
          };
        case 'removeHost':
          return async (id: number) => {
            await snapHosts([id]);
            return target.removeHost(id);
          };
        case 'importRows':
          return () => Promise.reject(new PasstoreError('policy', 'a restore writes into an empty store, never inside a change'));
        case 'transaction':
          // Already in one: nested work joins it, still seen.
          return <T>(fn: (inner: Store) => Promise<T>) => fn(wrapped);
        default: {
          const v = Reflect.get(target, prop, receiver) as unknown;
          return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
        }
      }
    },
  });
  return {
    store: wrapped,
    async changes() {
      if (!touched) return undefined;
      const added = await tx.entryStamps({ ids: [...ids], hostIds: [...hosts] });
      return { removed: [...old.values()], added };
    },
  };
}
