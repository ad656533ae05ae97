/**
 * Making a new key and request for a host: shared by `crtreq` and `passtore-cron renew`.
 * The host's earlier open request is cancelled (its key kept as history) only when the
 * caller saw it and chose to replace it; the current certificate and key stay in place
 * until the new certificate arrives. The request keeps the subject of the host's current
 * certificate (a Globus `/DC=…/O=INFN/CN=host/FQDN` stays so, as certmonger keeps a
 * tracked subject), unless asked for dn_template's.
 *
 * Idempotent whatever runs at once: the open requests are read again inside the
 * transaction that stores the new key (serial on SQLite, behind the vault row's lock on
 * MySQL), and when they are not the ones the caller expected, nothing is stored. So a
 * host has at most one open request, and each renewal stores one key.
 */
import { X509Certificate } from 'node:crypto';
import { PasstoreError } from '../errors.js';
import { step } from '../faults.js';
import type { Context } from '../command.js';
import type { KeyType } from '../config.js';
import type { HostRow, RequestRow, Store } from '../storage/store.js';
import { storeKey } from './cert-store.js';
import { generateKey } from './keys.js';
import { certificateNames, nameAttributes } from './dn.js';
import { buildRequest, subjectFor } from './request.js';

/** What making a request uses of the session's context. */
export type RequestDeps = Pick<Context, 'config' | 'store' | 'vault' | 'operator' | 'change' | 'audit'>;

export interface MadeRequest {
  requestId: number;
  keyType: string;
  subject: string;
  sans: string[];
  pem: string;
}

/** A request still waiting for its certificate. */
export const isOpen = (r: RequestRow): boolean => r.state === 'created' || r.state === 'sent';

/** Thrown when another run or session made a request for the host meanwhile. */
export class RequestAlreadyOpen extends PasstoreError {
  constructor(readonly fqdn: string, readonly open: RequestRow) {
    super('exists', `${fqdn} already has an open request (made ${open.createdAt.slice(0, 16).replace('T', ' ')}); nothing was made`);
  }
}

/**
 * Generates a key, builds and stores the request; returns its PEM. `replace` is the id of
 * the open request the caller saw and agreed to cancel, or null when it saw none; any
 * other open request found in the transaction refuses with RequestAlreadyOpen.
 */
export async function makeRequest(
  deps: RequestDeps,
  host: HostRow,
  type: KeyType,
  extraSans: string[] = [],
  action = 'crtreq',
  /** Runs in the request's own transaction (the request mail is queued with it). */
  withRequest?: (tx: Store, made: MadeRequest) => Promise<void>,
  replace: number | null = null,
  /** `current`: the subject of the host's current certificate when it has one; `template`: dn_template's. */
  subjectFrom: 'current' | 'template' = 'current',
): Promise<MadeRequest> {
  const wanted = subjectFrom === 'current' ? ((await currentSubject(deps, host)) ?? subjectFor(deps.config.dnTemplate, host.fqdn)) : subjectFor(deps.config.dnTemplate, host.fqdn);
  const key = await generateKey(type);
  step('request-key-made');
  try {
    const sans = [host.fqdn, ...extraSans.filter((s) => s !== host.fqdn)];
    const { pem, subject } = await buildRequest(key.pkcs8, key.facts, wanted, sans);
    const now = new Date().toISOString();
    const requestId = await deps.change(async (tx) => {
      for (const r of (await tx.listRequests(host.id)).filter(isOpen)) {
        if (r.id !== replace) throw new RequestAlreadyOpen(host.fqdn, r);
        await tx.setRequestState(r.id, 'cancelled', now);
        await tx.setKeyState(r.keyId, 'history');
      }
      const keyId = await storeKey(tx, deps.vault, host, key.pkcs8, key.facts, { state: 'pending', origin: 'generated', by: deps.operator });
      const id = await tx.insertRequest({ hostId: host.id, keyId, subject, sans: sans.join(','), pem, state: 'created', createdAt: now, updatedAt: now });
      await deps.audit({ action, target: host.fqdn, outcome: 'ok', detail: `${key.facts.type} ${key.facts.spkiSha256.slice(0, 16)}` }, tx);
      await withRequest?.(tx, { requestId: id, keyType: key.facts.type, subject, sans, pem });
      step('request-in-transaction');
      return id;
    });
    return { requestId, keyType: key.facts.type, subject, sans, pem };
  } finally {
    key.pkcs8.fill(0);
  }
}

/** The DER subject of the host's current certificate, when it has one and it is not empty. */
async function currentSubject(deps: RequestDeps, host: HostRow): Promise<Buffer | undefined> {
  const current = (await deps.store.listCertificates(host.id)).find((c) => c.state === 'current');
  if (!current) return undefined;
  const subject = certificateNames(new X509Certificate(current.pem).raw).subject;
  return nameAttributes(subject).length > 0 ? Buffer.from(subject) : undefined;
}
