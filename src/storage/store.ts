/**
 * The storage contract. Storage is untrusted: it sees cleartext names and metadata and
 * only ciphertext for secrets (the vault encrypts before anything crosses this line).
 * One implementation, `SqlStore`, runs on each SQL dialect; the conformance suite in
 * `test/storage/` runs against every one.
 */
import type { Ciphertext } from '../vault/ciphertext.js';
import type { Dialect } from './driver.js';

export interface VaultRow {
  id: string;
  createdAt: string;
  dataKeyGeneration: number;
  dataKeyCiphertext: Ciphertext;
  /** The sealed head of the audit chain (JSON), or null before the first sealed record. */
  auditHead?: string | null;
  /** The vault's keyring (JSON, see src/vault/keyring.ts), or null for a vault not rekeyed since schema 8. */
  keyring?: string | null;
  /** The sealed summary of what is current (JSON, see src/vault/summary.ts), or null before schema 12's first unlock. */
  summary?: string | null;
}

/** What the summary of what is current covers of an entry: its name, version and state (no ciphertext). */
export type EntryStamp = Pick<EntryRow, 'id' | 'hostId' | 'fqdn' | 'user' | 'service' | 'version' | 'state'>;

export type SlotKind = 'passphrase' | 'keyfile';

/** The key of an account at a CA (the ACME account key), encrypted under the data key. */
export interface AccountKeyRow {
  name: string;
  keyCiphertext: Ciphertext;
  createdAt: string;
}

export interface SlotRow {
  id: number;
  kind: SlotKind;
  name: string;
  kdf: string;
  rootKeyCiphertext: Ciphertext;
  failedAttempts: number;
  createdAt: string;
  createdBy: string;
}

export interface HostRow {
  id: number;
  fqdn: string;
  address: string | null;
  port: number;
  createdAt: string;
  /** The pinned SSH host key, `type base64`, or null before `host trust`. */
  sshHostKey: string | null;
  /** The user passtore logs in as (`host login`); null means root. */
  loginUser?: string | null;
  /** Whether commands that need root run through sudo as that user. */
  loginSudo?: boolean;
  /** The deploy profiles assigned by `host profile`; null means the built-in `grid`. */
  profiles?: string[] | null;
  /** What the last drift check (passtore-cron verify) found on the host; null: nothing. */
  drift?: string | null;
}

/**
 * A vault-held SSH deploy key (`sshkey`): `current` is used; `next` is one a rotation is
 * installing; `previous` is a rotated-out key some host may still need; `retired` is kept
 * as history only. The private half is only ever ciphertext here.
 */
export type SshKeyState = 'current' | 'next' | 'previous' | 'retired';

export interface SshKeyRow {
  id: number;
  /** The `authorized_keys` line: `ssh-ed25519 BASE64 comment`. */
  publicKey: string;
  fingerprint: string;
  state: SshKeyState;
  keyCiphertext: Ciphertext;
  createdAt: string;
  createdBy: string;
}

export type EntryState = 'set' | 'unset';

export interface EntryRow {
  id: number;
  hostId: number;
  fqdn: string;
  user: string;
  service: string;
  version: number;
  state: EntryState;
  secretCiphertext: Ciphertext | null;
  updatedAt: string;
  updatedBy: string;
  /** A new password stored before the host was changed, until confirmed. */
  pendingCiphertext: Ciphertext | null;
  pendingVersion: number | null;
}

/** An entry's name and state, without its ciphertexts: what `list` shows. */
export type EntryName = Pick<EntryRow, 'fqdn' | 'user' | 'service' | 'state'>;

export interface HistoryRow {
  id: number;
  fqdn: string;
  user: string;
  service: string;
  version: number;
  secretCiphertext: Ciphertext | null;
  reason: 'updated' | 'deleted';
  archivedAt: string;
  archivedBy: string;
}

export interface AuditRow {
  seq: number;
  at: string;
  operator: string;
  action: string;
  target: string;
  outcome: string;
  detail: string;
  prevHash: string;
  hash: string;
  mac: string | null;
}

export interface NewEntry {
  hostId: number;
  user: string;
  service: string;
  version: number;
  state: EntryState;
  secretCiphertext: Ciphertext | null;
  updatedAt: string;
  updatedBy: string;
}

export type KeyState = 'pending' | 'current' | 'history';

/** A host's private key: public facts in cleartext, the key itself only as ciphertext. */
export interface KeyRow {
  id: number;
  hostId: number;
  fqdn: string;
  spkiSha256: string;
  keyType: string;
  state: KeyState;
  origin: 'generated' | 'imported';
  keyCiphertext: Ciphertext;
  createdAt: string;
  createdBy: string;
}

export type RequestState = 'created' | 'sent' | 'fulfilled' | 'cancelled';

export interface RequestRow {
  id: number;
  hostId: number;
  fqdn: string;
  keyId: number;
  subject: string;
  sans: string;
  pem: string;
  state: RequestState;
  createdAt: string;
  updatedAt: string;
}

export interface CertRow {
  id: number;
  hostId: number;
  fqdn: string;
  keyId: number;
  spkiSha256: string;
  fingerprintSha256: string;
  subject: string;
  issuer: string;
  serial: string;
  sans: string;
  notBefore: string;
  notAfter: string;
  pem: string;
  /** The issuing chain stored with it (PEM, the certificate's issuer first), or null. */
  chainPem: string | null;
  state: 'current' | 'history';
  storedAt: string;
  storedBy: string;
  deployedAt: string | null;
  /** The paired key's SPKI hash and type, read with the certificate. */
  keySpkiSha256?: string;
  keyType?: string;
}

/** A mail passtore-cron queued; only public data (requests, certificates, names). */
export interface MailRow {
  id: number;
  dedupeKey: string | null;
  createdAt: string;
  recipients: string[];
  subject: string;
  body: string;
  attachments: Array<{ filename: string; content: string }>;
  state: 'queued' | 'sent';
  /** The sender that claimed it (a holder tag), while it sends it. */
  claimedBy?: string | null;
  attempts: number;
  lastError: string | null;
  sentAt: string | null;
}

/** Who holds a run lease (passtore-cron: one run acts at a time). */
export interface LeaseRow {
  name: string;
  /** The holder's random token; empty when the lease is free. */
  token: string;
  machine: string;
  pid: number;
  startedAt: string;
  expiresAt: string;
}

/** A queued mail's bookkeeping, without its body (what `check` and the warnings read). */
export interface UnsentMail {
  id: number;
  dedupeKey: string | null;
  createdAt: string;
  attempts: number;
  lastError: string | null;
}

export interface Store {
  readonly dialect: Dialect;
  /** Where it is, for messages (`sqlite:/path` or `mysql://user@host/db`). */
  readonly location: string;

  /** Runs `fn` in one transaction; every multi-row change goes through here. */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  close(): Promise<void>;

  /** The vault row; `lock`: read with a write lock held to the end of the transaction (MySQL FOR UPDATE). */
  getVault(lock?: boolean): Promise<VaultRow | undefined>;
  createVault(row: VaultRow): Promise<void>;
  setDataKey(generation: number, wrapped: Ciphertext): Promise<void>;
  /** Replaces the vault's keyring (inside the rekey's transaction). */
  setKeyring(keyring: string): Promise<void>;

  /** Replaces the sealed summary of what is current (inside the change's transaction). */
  setSummary(summary: string): Promise<void>;
  /**
   * Entries' names, versions and states, no ciphertext: all of them, or those with one of
   * `ids` or on one of `hostIds` (what the summary of what is current is made of).
   */
  entryStamps(filter?: { ids?: number[]; hostIds?: number[] }): Promise<EntryStamp[]>;
  /**
   * Every entry's stamp as the text the summary's HMAC reads (`stampText` in
   * vault/entry-tags.ts: the JSON of fqdn, user, service, version, state), in no order:
   * the cheapest full read of what the summary of what is current covers.
   */
  entryStampTexts(): Promise<string[]>;
  /**
   * SQLite's `PRAGMA data_version`: a number that changes when any other connection (in
   * any process) commits to the database, and only then; undefined on MySQL, which has no
   * such number. The summary check (vault/summary.ts) skips re-reading the entries while it
   * stays the same.
   */
  dataVersion(): Promise<number | undefined>;

  getAccountKey(name: string): Promise<AccountKeyRow | undefined>;
  addAccountKey(row: AccountKeyRow): Promise<void>;
  listAccountKeys(): Promise<AccountKeyRow[]>;
  setAccountKeyCiphertext(name: string, ct: Ciphertext): Promise<void>;

  listSlots(): Promise<SlotRow[]>;
  getSlot(kind: SlotKind, name: string): Promise<SlotRow | undefined>;
  addSlot(row: Omit<SlotRow, 'id' | 'failedAttempts'>): Promise<void>;
  rewrapSlot(id: number, kdf: string, wrapped: Ciphertext): Promise<void>;
  deleteSlot(id: number): Promise<void>;
  setFailedAttempts(id: number, count: number): Promise<void>;

  addHost(row: Omit<HostRow, 'id' | 'sshHostKey'>): Promise<HostRow>;
  setHostKey(id: number, key: string | null): Promise<void>;
  setHostAddress(id: number, address: string | null, port: number): Promise<void>;
  /** Sets how a host is reached: its login user (null: root) and whether through sudo. */
  setHostLogin(id: number, user: string | null, sudo: boolean): Promise<void>;
  /** Assigns deploy profiles to a host (null: the built-in grid). */
  setHostProfiles(id: number, profiles: string[] | null): Promise<void>;
  /** Records what a drift check found (null: the host matches the vault). */
  setHostDrift(id: number, drift: string | null, at: string): Promise<void>;
  getHost(fqdn: string): Promise<HostRow | undefined>;
  /** Hosts matching a glob (`*` alone: all), sorted by name. */
  findHosts(glob: string, limit?: number): Promise<HostRow[]>;
  /** Host names starting with `prefix`, sorted, at most `limit` (tab completion). */
  hostNamesWithPrefix(prefix: string, limit: number): Promise<string[]>;
  removeHost(id: number): Promise<void>;
  countHosts(): Promise<number>;

  getEntry(fqdn: string, user: string, service: string): Promise<EntryRow | undefined>;
  /** Entries on hosts matching a glob, optionally one user and service, sorted. */
  findEntries(glob: string, user?: string, service?: string): Promise<EntryRow[]>;
  /** The names and states of the entries of hosts matching `glob`, ordered by host, user and service; no ciphertext is read. */
  listEntryNames(glob: string): Promise<EntryName[]>;
  insertEntry(row: NewEntry): Promise<void>;
  /** Inserts many entries with a few multi-row statements (a pattern write on a networked database). */
  insertEntries(rows: NewEntry[]): Promise<void>;
  /** Replaces an entry's secret, checking it still has `expectVersion` (lost updates fail). */
  updateEntry(id: number, expectVersion: number, row: Pick<NewEntry, 'version' | 'state' | 'secretCiphertext' | 'updatedAt' | 'updatedBy'>): Promise<void>;
  /** `updateEntry` for many entries with a few statements; any stale version fails them all. */
  updateEntries(updates: Array<{ id: number; expectVersion: number; row: Pick<NewEntry, 'version' | 'state' | 'secretCiphertext' | 'updatedAt' | 'updatedBy'> }>): Promise<void>;
  deleteEntry(id: number): Promise<void>;
  /** Stores (or, with null, clears) the pending password of an entry. */
  setPending(id: number, ct: Ciphertext | null, version: number | null, at: string | null): Promise<void>;
  /** Entries with a password change under way. */
  pendingEntries(): Promise<EntryRow[]>;
  archiveEntry(row: Omit<HistoryRow, 'id'>): Promise<void>;
  /** The highest version an entry has had, current or in history (0 if never). */
  /** `lastVersion` for many hosts' entry user:service at once (0 where there is none). */
  /** Archives many old versions with a few multi-row statements. */
  archiveEntries(rows: Array<Omit<HistoryRow, 'id'>>): Promise<void>;
  lastVersions(fqdns: string[], user: string, service: string): Promise<Map<string, number>>;
  lastVersion(fqdn: string, user: string, service: string): Promise<number>;
  listHistory(fqdn: string, user?: string, service?: string): Promise<HistoryRow[]>;
  distinctUsers(): Promise<string[]>;
  distinctServices(): Promise<string[]>;

  insertKey(row: Omit<KeyRow, 'id' | 'fqdn'>): Promise<number>;
  getKeyBySpki(spkiSha256: string): Promise<KeyRow | undefined>;
  /** A host's keys, newest first. */
  listKeys(hostId: number): Promise<KeyRow[]>;
  setKeyState(id: number, state: KeyState): Promise<void>;
  /** Gives a key to another host, with its ciphertext sealed for that host (one statement). */
  moveKey(id: number, hostId: number, ct: Ciphertext): Promise<void>;
  /** Removes a key that no certificate or request refers to. */
  deleteKey(id: number): Promise<void>;

  insertRequest(row: Omit<RequestRow, 'id' | 'fqdn'>): Promise<number>;
  /** A host's requests, newest first. */
  listRequests(hostId: number): Promise<RequestRow[]>;
  /** Requests still waiting (created or sent) on hosts matching a glob. */
  openRequests(glob: string): Promise<RequestRow[]>;
  setRequestState(id: number, state: RequestState, at: string): Promise<void>;

  insertCertificate(row: Omit<CertRow, 'id' | 'fqdn'>): Promise<number>;
  getCertificateByFingerprint(fingerprintSha256: string): Promise<CertRow | undefined>;
  /** A host's certificates, newest first. */
  listCertificates(hostId: number): Promise<CertRow[]>;
  setCertificateState(id: number, state: CertRow['state']): Promise<void>;
  setCertificateDeployed(id: number, at: string): Promise<void>;
  /** Current certificates on hosts matching a glob, by host name. */
  currentCertificates(glob: string): Promise<CertRow[]>;
  /** Current certificates whose not-after is before `beforeIso` (one indexed query). */
  expiringCertificates(beforeIso: string): Promise<CertRow[]>;

  /** The deploy keys, oldest first. */
  listSshKeys(): Promise<SshKeyRow[]>;
  insertSshKey(row: Omit<SshKeyRow, 'id'>): Promise<number>;
  setSshKeyState(id: number, state: SshKeyState): Promise<void>;
  setSshKeyCiphertext(id: number, ct: Ciphertext): Promise<void>;

  /** Every secret ciphertext with its identity, for rekey. */
  allSecrets(): Promise<{ entries: EntryRow[]; history: HistoryRow[]; keys: KeyRow[]; sshKeys?: SshKeyRow[] }>;
  setKeyCiphertext(id: number, ct: Ciphertext): Promise<void>;
  setEntryCiphertext(id: number, ct: Ciphertext): Promise<void>;
  setHistoryCiphertext(id: number, ct: Ciphertext): Promise<void>;

  /** Queues a mail; with a dedupe key already used, queues nothing and returns false. */
  queueMail(row: Pick<MailRow, 'dedupeKey' | 'recipients' | 'subject' | 'body' | 'attachments'>): Promise<boolean>;
  queuedMail(): Promise<MailRow[]>;
  markMailSent(id: number, at: string): Promise<void>;
  markMailFailed(id: number, error: string): Promise<void>;
  countQueuedMail(): Promise<number>;
  /** Queued mail, without bodies. */
  unsentMail(): Promise<UnsentMail[]>;
  /**
   * Claims a queued mail for one sender until `until` (one atomic update): true when this
   * sender has it now, false when it was sent or another sender's claim has not lapsed.
   */
  claimMail(id: number, claimant: string, until: string, now: string, deadClaimant?: string): Promise<boolean>;

  /**
   * Takes the run lease `name` for `holder` until `expiresAt`, when it is free, its
   * holder's lease expired before `now`, or it is still held with `deadToken` (a holder
   * known to be dead) (one atomic update). Returns undefined when taken, else the holder.
   */
  takeLease(name: string, holder: Omit<LeaseRow, 'name'>, now: string, deadToken?: string): Promise<LeaseRow | undefined>;
  /** Extends a lease this holder still has; false when it was lost (expired and taken). */
  extendLease(name: string, token: string, expiresAt: string): Promise<boolean>;
  /** Frees a lease this holder has. */
  releaseLease(name: string, token: string): Promise<void>;
  getLease(name: string): Promise<LeaseRow | undefined>;

  /** Every row of every table, for a backup (one consistent read). */
  exportRows(): Promise<Record<string, Array<Record<string, unknown>>>>;
  /** Writes a backup's rows into this empty store, in one transaction; returns the count. */
  importRows(rows: Record<string, Array<Record<string, unknown>>>): Promise<number>;

  lastAudit(): Promise<AuditRow | undefined>;
  appendAudit(row: AuditRow): Promise<void>;
  /** Appends consecutive records with a few multi-row statements. */
  appendAudits(rows: AuditRow[]): Promise<void>;
  /** Audit records in order; `targetLike` filters by an escaped LIKE pattern on target. */
  listAudit(options?: { targetLike?: string; limit?: number }): Promise<AuditRow[]>;
  setAuditMac(seq: number, mac: string): Promise<void>;
  /** Moves the sealed head of the audit trail (and, given, the summary of what is current with it, in one statement). */
  setAuditHead(head: string, summary?: string): Promise<void>;
  /** The audit records after `seq`, in order (at most `limit`). */
  auditAfter(seq: number, limit?: number): Promise<AuditRow[]>;
}
