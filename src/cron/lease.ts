/**
 * The run lease: only one passtore-cron run acts at a time, on this machine or on several
 * sharing one MariaDB. A run takes the lease row in the database (holder machine, pid,
 * start, expiry) with one atomic update, extends it while it works, and frees it at the
 * end. A second run waits up to `lease_wait` seconds, then gives up with one line; a
 * holder that died stops extending, and its lease is taken over once it expired, or at
 * once when the holder ran on this same system (same kernel boot and pid namespace, named
 * in its token) and its pid is gone.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { holderIsDead, holderTag } from '../holder.js';
import type { LeaseRow, Store } from '../storage/store.js';

/** The one lease every acting passtore-cron job holds. */
export const CRON_LEASE = 'cron';

/** A lease this process holds. */
export interface HeldLease {
  readonly row: LeaseRow;
  /** True once an extension found the lease taken by another run (it expired meanwhile). */
  readonly lost: boolean;
  release(): Promise<void>;
}

/** The one line a run says when another run holds the lease. */
export function heldBy(row: LeaseRow): string {
  const since = new Date(row.startedAt);
  const hhmm = Number.isNaN(since.getTime()) ? row.startedAt : `${String(since.getHours()).padStart(2, '0')}:${String(since.getMinutes()).padStart(2, '0')}`;
  return `another run holds the lease: ${row.machine} pid ${row.pid} since ${hhmm}`;
}

/**
 * Takes the lease, waiting up to `waitSeconds` (polling once a second or faster). Resolves
 * to the held lease, or to the holder's row when the wait ran out.
 */
export async function acquireLease(store: Store, options: { timeSeconds: number; waitSeconds: number; name?: string }): Promise<HeldLease | LeaseRow> {
  const name = options.name ?? CRON_LEASE;
  const ttl = options.timeSeconds * 1000;
  const token = holderTag();
  const deadline = Date.now() + options.waitSeconds * 1000;
  let dead: string | undefined;
  for (;;) {
    const now = new Date();
    const row: LeaseRow = { name, token, machine: hostname(), pid: process.pid, startedAt: now.toISOString(), expiresAt: new Date(now.getTime() + ttl).toISOString() };
    const holder = await store.takeLease(name, row, now.toISOString(), dead);
    if (!holder) return hold(store, row, ttl);
    // A holder on this system whose process is gone: taken over at once (by token, so
    // only that very lease, never one a live run took meanwhile).
    if (holderIsDead(holder.token) && dead !== holder.token) {
      dead = holder.token;
      continue;
    }
    const left = deadline - Date.now();
    if (left <= 0) return holder;
    await sleep(Math.min(1000, left, Math.max(50, Date.parse(holder.expiresAt) - Date.now())));
  }
}

function hold(store: Store, row: LeaseRow, ttl: number): HeldLease {
  let lost = false;
  let extending: Promise<unknown> = Promise.resolve();
  // Extended at a third of its time: two missed extensions still leave it held.
  const timer = setInterval(() => {
    extending = store
      .extendLease(row.name, row.token, new Date(Date.now() + ttl).toISOString())
      .then((ok) => {
        if (!ok) lost = true;
      })
      .catch(() => undefined);
  }, Math.max(500, ttl / 3));
  timer.unref();
  return {
    row,
    get lost() {
      return lost;
    },
    async release() {
      clearInterval(timer);
      await extending;
      await store.releaseLease(row.name, row.token);
    },
  };
}

/** Whether acquireLease got the lease. */
export function isHeld(x: HeldLease | LeaseRow): x is HeldLease {
  return typeof (x as HeldLease).release === 'function';
}
