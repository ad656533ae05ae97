/**
 * Resolving what a command's arguments name: the hosts a pattern matches, the entries an
 * entry spec (with or without wildcards) names. Shared by the commands that take them.
 */
import { readRegularFile } from './safe-file.js';
import { notFound } from './errors.js';
import { formatSpec, type EntrySpec, type HostPattern, type SpecPattern } from './names.js';
import type { EntryRow, HostRow, Store } from './storage/store.js';

/** The stored host an exact name (a `host` argument) names; one that is not stored is an error. */
export async function resolveHost(store: Store, fqdn: string): Promise<HostRow> {
  const host = await store.getHost(fqdn);
  if (!host) throw notFound(`unknown host ${fqdn} (add it with: host add ${fqdn})`);
  return host;
}

/** The hosts a pattern names; an exact name that is not stored is an error. */
export async function resolveHosts(store: Store, pattern: HostPattern): Promise<HostRow[]> {
  if (!pattern.wild) return [await resolveHost(store, pattern.glob)];
  const hosts = await store.findHosts(pattern.glob);
  if (hosts.length === 0) throw notFound(`no host matches ${pattern.glob}`);
  return hosts;
}

/** The one stored entry an exact spec names. */
export async function resolveEntry(store: Store, spec: EntrySpec): Promise<EntryRow> {
  const entry = await store.getEntry(spec.fqdn, spec.user, spec.service);
  if (!entry) {
    const host = await store.getHost(spec.fqdn);
    throw notFound(host ? `no entry ${formatSpec(spec)}` : `unknown host ${spec.fqdn}`);
  }
  return entry;
}

/** The stored entries a spec pattern names (at least one). */
export async function resolveEntries(store: Store, spec: SpecPattern): Promise<EntryRow[]> {
  if (!spec.host.wild) return [await resolveEntry(store, { fqdn: spec.host.glob, user: spec.user, service: spec.service })];
  const entries = await store.findEntries(spec.host.glob, spec.user, spec.service);
  if (entries.length === 0) throw notFound(`no entry matches ${spec.user}@${spec.host.glob}:${spec.service}`);
  return entries;
}

/** Now, as stored in every timestamp column. */
export const now = (): string => new Date().toISOString();

/**
 * Reads a local file given on the command line (at most 1 MiB), with one-line errors:
 * only a regular file, and reading stops at the limit (a device reports a size of 0).
 */
export function readLocalFile(file: string, limit = 1024 * 1024): Buffer {
  return readRegularFile(file, limit);
}
