/**
 * The hash-chained audit trail. Each record carries the SHA-256 of the previous record
 * and its own; records written while the vault is unlocked also carry an HMAC of their
 * hash under a key derived from the root key, so a chain rebuilt by someone who edited
 * the database does not verify. Records name entries; they never hold secret values.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { AuditRow, Store } from '../storage/store.js';
import { PasstoreError } from '../errors.js';

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
 * showing anything.
 */
export async function appendAudit(store: Store, operator: string, event: AuditEvent, macKey?: Buffer): Promise<AuditRow> {
  const last = await store.lastAudit();
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
    await store.appendAudit(row);
  } catch (e) {
    throw new PasstoreError('audit', 'cannot write the audit record; nothing was done', { cause: e });
  }
  return row;
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
export function verifyChain(rows: AuditRow[], macKey: Buffer): AuditReport {
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
  return { records: rows.length, macs, problems };
}
