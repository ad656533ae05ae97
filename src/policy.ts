/**
 * Policies that many parts apply, each in one place: the passphrase minimum, the key
 * types passtore makes, and how many hosts one command or job works on at once (with the
 * one `--jobs` flag that changes it).
 */
import type { FlagSpec, Input } from './command.js';

/** The fewest characters a vault passphrase may have (init, passwd, operator add). */
export const PASSPHRASE_MIN = 12;

/** The one-line refusal of a passphrase shorter than PASSPHRASE_MIN. */
export function passphraseTooShort(): string {
  return `a passphrase needs at least ${PASSPHRASE_MIN} characters`;
}

/** The key types passtore generates (crtreq --type, key_type, renewal). */
export const KEY_TYPES = ['rsa-2048', 'rsa-4096', 'ec-p256'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** Whether a text names one of KEY_TYPES. */
export function isKeyType(v: string | undefined): v is KeyType {
  return (KEY_TYPES as readonly string[]).includes(v ?? '');
}

/** The KEY_TYPES list for messages: "rsa-2048, rsa-4096 or ec-p256". */
export const KEY_TYPE_LIST = `${KEY_TYPES.slice(0, -1).join(', ')} or ${KEY_TYPES.at(-1)}`;

/**
 * How many hosts a pattern command or a passtore-cron job works on at once by default.
 * A host's deploy is mostly waiting on the network (about ten round trips: the SSH
 * handshake and one remote command) and its work runs on the host's own CPU; the vault's
 * part is a few milliseconds. So the default is pssh's 32, not Ansible's 5 forks (which
 * pay for a Python process each): a 20-host burst then runs as one wave. Each host still
 * gets its own guard rule naming only its address and port, so more at once never opens
 * more than the hosts being worked on; `--jobs` goes from 1 to 64.
 */
export const DEFAULT_CONCURRENCY = 32;

/** The most hosts `--jobs` may ask for at once. */
export const MAX_JOBS = 64;

/** The `--jobs N` flag of every command that works on several hosts at once. */
export const JOBS_FLAG: FlagSpec = {
  type: 'string',
  description: `how many hosts at once (default ${DEFAULT_CONCURRENCY})`,
  check: (v) => (/^\d{1,3}$/.test(v) && Number(v) >= 1 && Number(v) <= MAX_JOBS ? undefined : `expected a number from 1 to ${MAX_JOBS}`),
};

/** The concurrency a command was given with --jobs, or the context's default. */
export function jobsOf(input: Input, fallback: number): number {
  const v = input.option('jobs');
  return v === undefined ? fallback : Number(v);
}
