/**
 * Who holds a run lease or a mail claim: a tag naming this process's pid space (the
 * kernel's boot id and pid namespace), its pid and a random part. A holder in the same pid
 * space whose pid is gone is dead for certain, and what it held can be taken at once; any
 * other holder (another machine, another container) is waited for until its time runs out.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';

let space: string | undefined | null = null;

/** This system's pid space, or undefined where it cannot be read (not Linux). */
function pidSpace(): string | undefined {
  if (space !== null) return space;
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const ns = readlinkSync('/proc/self/ns/pid').replace(/[^0-9]/g, '');
    space = boot && ns ? `${boot}.${ns}` : undefined;
  } catch {
    space = undefined;
  }
  return space;
}

/** A fresh holder tag for this process: `SPACE/PID/RANDOM` (at most 100 characters). */
export function holderTag(): string {
  return `${pidSpace() ?? 'unknown'}/${process.pid}/${randomUUID()}`;
}

/** Whether the holder that wrote `tag` ran in this pid space and its process is gone. */
export function holderIsDead(tag: string | null | undefined): boolean {
  const mine = pidSpace();
  const [where, pid] = (tag ?? '').split('/');
  if (!mine || where !== mine || !/^\d+$/.test(pid ?? '') || Number(pid) <= 0) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
