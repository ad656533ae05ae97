/**
 * The hash-chained audit trail. Each record carries the SHA-256 of the previous record
 * and its own; records written while the vault is unlocked also carry an HMAC of their
 * hash under a key derived from the root key, so a chain rebuilt by someone who edited
 * the database does not verify. Records name entries; they never hold secret values.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { AuditRow, Store } from '../storage/store.js';
import { PasstoreError } from '../errors.js';
import { nextSummary } from './summary.js';

export const GENESIS = '0'.repeat(64);

export type AuditOutcome = 'ok' | 'failed' | 'refused';

/** One thing that happened, as the caller describes it. */
export interface AuditEvent {
  action: string;
  target: string;
  outcome: AuditOutcome;
  detail?: string;
}

function recordHash(prevHash: string, r: Omit<AuditRow, 'hash' | 'mac' | 'prevHash'>): string {
  const body = JSON.stringify([r.seq, r.at, r.operator, r.action, r.target, r.outcome, r.detail]);
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/** HMAC of a record hash under the audit key. */
export function auditMac(key: Buffer, hash: string): string {
  return createHmac('sha256', key).update(hash).digest('hex');
}

/**
 * Appends one record. Call it inside the transaction that makes the change, so the change
 * and its record commit together; for a reveal, call it (and let it commit) before
 * showing anything. Called outside one, it makes its own.
 */
export async function appendAudit(store: Store, operator: string, event: AuditEvent, macKey?: Buffer): Promise<AuditRow> {
  // One transaction: the record, the sealed head and the summary of what is current
  // (summary.ts) commit together. Every append locks the vault row first, as every change
  // does, so two sessions never take the two locks in opposite orders.
  return atomically(store, async (tx) => {
    // The vault row first, sealed or not: two appends never take the same sequence number.
    await tx.getVault(true);
    const last = await tx.lastAudit();
    const base = {
      seq: (last?.seq ?? 0) + 1,
      at: new Date().toISOString(),
      operator,
      action: event.action,
      target: event.target,
      outcome: event.outcome,
      detail: (event.detail ?? '').slice(0, 500),
    };
    const prevHash = last?.hash ?? GENESIS;
    const hash = recordHash(prevHash, base);
    const row: AuditRow = { ...base, prevHash, hash, mac: macKey ? auditMac(macKey, hash) : null };
    try {
      await tx.appendAudit(row);
      if (macKey) await advanceHead(tx, macKey, row);
    } catch (e) {
      // A storage failure (the database gone) is named, so the operator knows where to look.
      const why = e instanceof PasstoreError && e.code === 'storage' ? ` (${e.message})` : '';
      throw new PasstoreError('audit', `cannot write the audit record${why}; nothing was done`, { cause: e });
    }
    return row;
  });
}

/** Runs `fn` in a transaction of `store` (joining the caller's when there is one); a failure to begin is an audit error. */
async function atomically<T>(store: Store, fn: (tx: Store) => Promise<T>): Promise<T> {
  try {
    return await store.transaction(fn);
  } catch (e) {
    if (e instanceof PasstoreError && e.code === 'audit') throw e;
    const why = e instanceof PasstoreError && e.code === 'storage' ? ` (${e.message})` : '';
    throw new PasstoreError('audit', `cannot write the audit record${why}; nothing was done`, { cause: e });
  }
}

/**
 * Appends several records at once, in order, as `appendAudit` would one by one: one read
 * of the last record, the chain computed here, a few multi-row inserts and one move of
 * the sealed head. For a pattern change's records, inside its transaction.
 */
export async function appendAudits(store: Store, operator: string, events: AuditEvent[], macKey?: Buffer): Promise<AuditRow[]> {
  if (events.length === 0) return [];
  return atomically(store, async (tx) => {
    // The vault row first, sealed or not: two appends never take the same sequence number.
    await tx.getVault(true);
    const last = await tx.lastAudit();
    const rows: AuditRow[] = [];
    let seq = last?.seq ?? 0;
    let prevHash = last?.hash ?? GENESIS;
    const at = new Date().toISOString();
    for (const event of events) {
      const base = { seq: ++seq, at, operator, action: event.action, target: event.target, outcome: event.outcome, detail: (event.detail ?? '').slice(0, 500) };
      const hash = recordHash(prevHash, base);
      rows.push({ ...base, prevHash, hash, mac: macKey ? auditMac(macKey, hash) : null });
      prevHash = hash;
    }
    try {
      await tx.appendAudits(rows);
      if (macKey) await advanceHead(tx, macKey, rows.at(-1)!, rows.length);
    } catch (e) {
      const why = e instanceof PasstoreError && e.code === 'storage' ? ` (${e.message})` : '';
      throw new PasstoreError('audit', `cannot write the audit record${why}; nothing was done`, { cause: e });
    }
    return rows;
  });
}

interface Head {
  seq: number;
  hash: string;
  /** How many sealed records the trail has had: removing sealed ones shows. */
  sealed: number;
  mac: string;
}

const headMac = (key: Buffer, h: Omit<Head, 'mac'>) => auditMac(key, `head ${h.seq} ${h.hash} ${h.sealed}`);

function readHead(text: string | null | undefined, key: Buffer): Head | 'missing' | 'bad' {
  if (!text) return 'missing';
  try {
    const h = JSON.parse(text) as Head;
    const want = Buffer.from(headMac(key, h), 'hex');
    const got = Buffer.from(String(h.mac), 'hex');
    return got.length === want.length && timingSafeEqual(got, want) ? h : 'bad';
  } catch {
    return 'bad';
  }
}

/** Moves the sealed head to a new sealed record. A damaged head is left for verify to report. */
async function advanceHead(store: Store, key: Buffer, row: AuditRow, added = 1): Promise<void> {
  const vault = await store.getVault(true);
  const old = readHead(vault?.auditHead, key);
  if (!vault || old === 'bad') return;
  const next = { seq: row.seq, hash: row.hash, sealed: old === 'missing' ? added : old.sealed + added };
  const head = JSON.stringify({ ...next, mac: headMac(key, next) });
  // The summary of what is current seals the new head with it, in the same statement.
  await store.setAuditHead(head, await nextSummary(store, key, vault, undefined, head));
}

/**
 * Seals the records written without the key since the newest sealed one (failed unlocks),
 * at the first unlock after them: from then on, removing or changing one breaks the chain
 * and the head. Only records that follow the chain are sealed; the first that does not
 * stops it (left for `audit --verify` to report). Returns how many were sealed.
 */
export async function sealUnsealed(store: Store, key: Buffer): Promise<number> {
  return store.transaction(async (tx) => {
    const vault = await tx.getVault(true);
    const head = readHead(vault?.auditHead, key);
    if (!vault || head === 'bad' || head === 'missing') return 0;
    let prev = head.hash;
    let last: AuditRow | undefined;
    let n = 0;
    for (const r of await tx.auditAfter(head.seq)) {
      if (r.mac !== null || r.prevHash !== prev || recordHash(r.prevHash, r) !== r.hash || r.seq !== (last?.seq ?? head.seq) + 1) break;
      if (!(r.action === 'unlock' && r.outcome === 'failed')) break;
      await tx.setAuditMac(r.seq, auditMac(key, r.hash));
      prev = r.hash;
      last = r;
      n++;
    }
    if (last) await advanceHead(tx, key, last, n);
    return n;
  });
}

export interface AuditReport {
  records: number;
  macs: number;
  problems: string[];
}

/**
 * Checks the whole chain: sequence numbers without gaps, each record's link to the one
 * before, each hash, and each HMAC. Reports every problem by sequence number.
 */
export function verifyChain(rows: AuditRow[], macKey: Buffer, headText?: string | null): AuditReport {
  const problems: string[] = [];
  let prev = GENESIS;
  let expectSeq = 1;
  let macs = 0;
  let sealedSeen = false;
  for (const r of rows) {
    if (r.seq !== expectSeq) {
      problems.push(r.seq > expectSeq ? `records ${expectSeq}..${r.seq - 1} are missing` : `record ${r.seq} is out of order`);
    }
    if (r.prevHash !== prev) problems.push(`record ${r.seq} does not follow the record before it (removed or reordered)`);
    if (recordHash(r.prevHash, r) !== r.hash) problems.push(`record ${r.seq} was edited (hash mismatch)`);
    if (r.mac === null && sealedSeen && !(r.action === 'unlock' && r.outcome === 'failed')) {
      // Only a failed unlock is written without the key; a bare record after the first
      // sealed one was stripped of its seal.
      problems.push(`record ${r.seq} lacks its seal (stripped or rewritten)`);
    }
    if (r.mac !== null) {
      sealedSeen = true;
      const want = Buffer.from(auditMac(macKey, r.hash), 'hex');
      const got = Buffer.from(r.mac, 'hex');
      if (got.length !== want.length || !timingSafeEqual(got, want)) problems.push(`record ${r.seq} has a bad seal (rewritten chain)`);
      else macs++;
    }
    prev = r.hash;
    expectSeq = r.seq + 1;
  }
  checkHead(rows, macKey, headText, sealedSeen, problems);
  return { records: rows.length, macs, problems };
}

/** The sealed head names the newest sealed record and counts them: removing records at the end shows. */
function checkHead(rows: AuditRow[], macKey: Buffer, headText: string | null | undefined, sealedSeen: boolean, problems: string[]): void {
  const head = readHead(headText, macKey);
  if (head === 'missing') {
    if (sealedSeen) problems.push('the sealed head of the trail is missing');
    return;
  }
  if (head === 'bad') {
    problems.push('the sealed head of the trail has a bad seal or is unreadable');
    return;
  }
  const record = rows.find((r) => r.seq === head.seq);
  if (!record) problems.push(`the trail ends before record ${head.seq}, its newest sealed record (records removed)`);
  else if (record.hash !== head.hash) problems.push(`record ${head.seq} is not the newest sealed record the trail recorded`);
  const later = rows.find((r) => r.seq > head.seq && r.mac !== null);
  if (later) problems.push(`record ${later.seq} is sealed but newer than the recorded head (the head was rolled back)`);
  const sealed = rows.filter((r) => r.mac !== null).length;
  if (sealed < head.sealed) problems.push(`the trail holds ${head.sealed - sealed} fewer sealed records than its head counts (removed or stripped)`);
}
