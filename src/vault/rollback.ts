/**
 * Rollback detection. Storage is untrusted: whoever can write the database without any
 * key (a database administrator, a copy put back by hand) could otherwise bring back an
 * older, consistent state (a rekey undone, the end of the audit trail cut off).
 *
 * The vault's state is summed up as its sealed audit head (newest sealed record, its
 * hash, how many sealed records) together with the data key and root key generations,
 * sealed with an HMAC under the audit key (which every rekey carries over). A copy of
 * that summary is kept outside the database, on the vault machine (`head-<vault>.json`
 * in the data directory, updated after each unlock and command and at close), and goes
 * into each backup's manifest. At unlock the database's state is compared with the
 * copy: anything older is refused with an integrity error naming what was rolled back.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PasstoreError } from '../errors.js';
import { replaceFile } from '../safe-file.js';
import type { VaultRow } from '../storage/store.js';
import { parseKeyring } from './keyring.js';
import { counterOf } from './summary.js';

/** The sealed summary of what is current. */
export interface VaultState {
  vaultId: string;
  /** Newest sealed audit record: number and hash; and how many sealed records there are. */
  seq: number;
  hash: string;
  sealed: number;
  dataKeyGeneration: number;
  rootGeneration: number;
  /** When this summary was taken (for messages). */
  at: string;
  /**
   * Each entry's version, in copies written before schema 12 (kept for their seal);
   * entries are now covered by the summary of what is current in the database.
   */
  versions?: Record<string, number>;
  /** The change counter of the summary of what is current (summary.ts); absent before schema 12. */
  counter?: number;
  mac: string;
}

const versionsText = (v: Record<string, number> | undefined) => (v ? JSON.stringify(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : '');
// A copy made before schema 12 has no counter, and keeps the body it was sealed with.
const body = (s: Omit<VaultState, 'mac'>) =>
  s.counter === undefined
    ? JSON.stringify(['passtore state 1', s.vaultId, s.seq, s.hash, s.sealed, s.dataKeyGeneration, s.rootGeneration, s.at, versionsText(s.versions)])
    : JSON.stringify(['passtore state 2', s.vaultId, s.seq, s.hash, s.sealed, s.dataKeyGeneration, s.rootGeneration, s.at, versionsText(s.versions), s.counter]);
const macOf = (key: Buffer, s: Omit<VaultState, 'mac'>) => createHmac('sha256', key).update(body(s)).digest('hex');

/**
 * The state of a vault row, as this unlocked session sees it. `auditKey` has opened the
 * row (its data key and keyring); the head's own seal is checked here.
 */
export function stateOf(row: VaultRow, auditKey: Buffer): VaultState {
  let head = { seq: 0, hash: '', sealed: 0 };
  if (row.auditHead) {
    const h = JSON.parse(row.auditHead) as { seq: number; hash: string; sealed: number; mac: string };
    const want = createHmac('sha256', auditKey).update(`head ${h.seq} ${h.hash} ${h.sealed}`).digest();
    const got = Buffer.from(String(h.mac), 'hex');
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw new PasstoreError('integrity', 'integrity error: the sealed head of the audit trail has a bad seal: the vault record was altered');
    head = { seq: h.seq, hash: h.hash, sealed: h.sealed };
  }
  const counter = counterOf(row);
  const s = { vaultId: row.id, ...head, dataKeyGeneration: row.dataKeyGeneration, rootGeneration: parseKeyring(row.keyring)?.rootGeneration ?? 1, at: new Date().toISOString(), ...(counter === undefined ? {} : { counter }) };
  return { ...s, mac: macOf(auditKey, s) };
}

/** Checks a summary's seal; returns it, or undefined when it is not one of this vault's. */
export function verifyState(value: unknown, vaultId: string, auditKey: Buffer): VaultState | undefined {
  const s = value as VaultState;
  if (!s || typeof s !== 'object' || s.vaultId !== vaultId || typeof s.mac !== 'string') return undefined;
  const want = Buffer.from(macOf(auditKey, s), 'hex');
  const got = Buffer.from(s.mac, 'hex');
  return got.length === want.length && timingSafeEqual(got, want) ? s : undefined;
}

/**
 * What `current` lost compared with `seen` (an earlier summary), in words, or undefined
 * when `current` is the same state or a later one.
 */
export function rolledBack(current: VaultState, seen: VaultState): string | undefined {
  const what: string[] = [];
  if (current.rootGeneration < seen.rootGeneration || current.dataKeyGeneration < seen.dataKeyGeneration) {
    what.push(`a rekey was undone (data key generation ${current.dataKeyGeneration}, root key generation ${current.rootGeneration}; generation ${seen.dataKeyGeneration}, ${seen.rootGeneration} was seen)`);
  }
  if (current.seq < seen.seq || current.sealed < seen.sealed) {
    what.push(`the end of the audit trail was cut off (it ends at sealed record ${current.seq}; record ${seen.seq} was seen)`);
  } else if (current.seq === seen.seq && current.hash !== seen.hash) {
    what.push(`the audit trail was rewritten (record ${current.seq} is not the one seen)`);
  }
  // Last, as the most general: the summary's change counter only moves forward, so a lower
  // one is an older vault record whatever was written since (a session that sees a higher
  // one than its copy is fine).
  if (seen.counter !== undefined && (current.counter ?? 0) < seen.counter) {
    what.push(current.counter === undefined ? `the summary of what is current is gone (change ${seen.counter} was seen)` : `the vault record is at an older state (change ${current.counter}; change ${seen.counter} was seen)`);
  }
  return what.length > 0 ? what.join('; ') : undefined;
}

/** Where the copy for `vaultId` is kept in `dir`. */
export function headCopyPath(dir: string, vaultId: string): string {
  return join(dir, `head-${vaultId.replace(/[^A-Za-z0-9-]/g, '')}.json`);
}

/** The copy kept on this machine, if any; a copy that does not verify is an integrity error. */
export function readHeadCopy(dir: string, vaultId: string, auditKey: Buffer): VaultState | undefined {
  const path = headCopyPath(dir, vaultId);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const s = verifyState(parsed, vaultId, auditKey);
  if (!s) throw new PasstoreError('integrity', `integrity error: ${path}, the copy of the vault's state, has a bad seal (altered); move it away only if you know why`);
  return s;
}

/** Replaces the copy kept on this machine (written under a temporary name, then renamed). */
export function writeHeadCopy(dir: string, state: VaultState): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // A temporary name of its own (exclusive, no-follow), renamed over the copy: sessions and
  // passtore-cron runs of this machine write it side by side.
  replaceFile(headCopyPath(dir, state.vaultId), `${JSON.stringify(state)}\n`, 0o600);
}

/**
 * Compares the database's state with the copy on this machine: throws an integrity error
 * naming what was rolled back, without moving the copy on (the caller writes it once every
 * other check passed). `seenRecordHash`, given the copy's newest sealed record number, returns
 * that record's hash in the database now: a trail that went on from another record than
 * the one seen here was put back and written on since.
 *
 * The copy is read before the vault row (`readRow`): another process of this machine
 * writes its copy only after its change committed, so a row read after the copy is never
 * older than it unless it was rolled back. Read the other way round, a change and its copy
 * written by another process between the two reads looked like a rollback (seen with two
 * shells sharing a data directory on a busy machine).
 */
export async function checkCopy(dir: string, vaultId: string, readRow: () => Promise<VaultRow>, auditKey: Buffer, seenRecordHash?: (seq: number) => Promise<string | undefined>): Promise<VaultState> {
  const seen = readHeadCopy(dir, vaultId, auditKey);
  const row = await readRow();
  if (row.id !== vaultId) throw new PasstoreError('integrity', 'integrity error: the vault record is another vault\'s; nothing is shown');
  const current = stateOf(row, auditKey);
  if (seen) {
    let lost = rolledBack(current, seen);
    if (!lost && seenRecordHash && seen.seq > 0 && current.seq > seen.seq && (await seenRecordHash(seen.seq)) !== seen.hash) {
      lost = `the vault was put back to an older state and written on since (audit record ${seen.seq} is not the one seen)`;
    }
    if (lost) throw new PasstoreError('integrity', `integrity error: the vault was rolled back: ${lost}, on this machine at ${seen.at.slice(0, 16).replace('T', ' ')}; nothing is shown`);
  }
  return current;
}
