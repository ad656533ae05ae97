/**
 * The `acme` fetcher: RFC 8555 through acme-client, with external account binding as
 * research CAs require it. For each open request it orders a certificate with the stored
 * request (the key never leaves the vault) and hands back what the CA issued. The EAB key
 * comes from a file (`acme_eab_hmac_file`), never from a command line; HS256 and HS512 are
 * both accepted (the binding is signed here, since acme-client signs HS256 only).
 */
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { readPrivate } from '../private-file.js';
import { Agent, get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { readPrivateFileBytes } from './fetcher.js';
import * as acme from 'acme-client';
import { PasstoreError } from '../errors.js';
import { addressOf } from '../remote/remote.js';
import type { RequestRow } from '../storage/store.js';
import type { Delivery, FetchContext, Fetcher } from './fetcher.js';

export interface AcmeSettings {
  directory: string;
  eabKid?: string;
  eabHmacFile?: string;
  eabAlg: 'HS256' | 'HS512';
  email?: string;
  caBundle?: string;
  /**
   * Where earlier versions kept the ACME account key in plaintext: a file found there is
   * taken into the vault once, then removed.
   */
  accountKeyFile: string;
  /** The vault's store of account keys (encrypted under the data key, in every backup). */
  accountKeys: AccountKeys;
}

/** Account keys kept in the vault, by name. */
export interface AccountKeys {
  /** The key stored under `name` (PEM, the caller wipes it), or undefined. */
  load(name: string): Promise<Buffer | undefined>;
  /** Stores a new key under `name`, with an audit record saying where it came from. */
  save(name: string, pem: Buffer, detail: string): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function readEabKey(file: string): Buffer {
  const bytes = readPrivateFileBytes(file, 'acme_eab_hmac_file');
  let key: Buffer;
  try {
    key = decodeBase64Url(bytes);
  } finally {
    bytes.fill(0);
  }
  if (key.length < 16) throw new PasstoreError('config', `[ca] acme_eab_hmac_file ${file} does not hold a base64url key`);
  return key;
}

/** Decodes base64url (or base64) bytes, ignoring surrounding white space, without making a string. */
function decodeBase64Url(text: Buffer): Buffer {
  const out = Buffer.alloc(Math.floor((text.length * 3) / 4) + 3);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (const c of text) {
    let v: number;
    if (c >= 0x41 && c <= 0x5a) v = c - 0x41;
    else if (c >= 0x61 && c <= 0x7a) v = c - 0x61 + 26;
    else if (c >= 0x30 && c <= 0x39) v = c - 0x30 + 52;
    else if (c === 0x2d || c === 0x2b) v = 62;
    else if (c === 0x5f || c === 0x2f) v = 63;
    else continue; // '=', white space
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  const key = Buffer.from(out.subarray(0, o));
  out.fill(0);
  return key;
}

export class AcmeFetcher implements Fetcher {
  readonly name = 'acme';
  constructor(private readonly s: AcmeSettings) {}

  /**
   * The account key for this directory, from the vault. The first run that finds none
   * there takes in the plaintext file an earlier version left (then removes it), or makes
   * a new key; either is stored in the vault before it is used.
   */
  async #accountKey(): Promise<Buffer> {
    const name = `acme ${this.s.directory}`;
    const file = this.s.accountKeyFile;
    const stored = await this.s.accountKeys.load(name);
    if (stored) {
      // A file left by a run that stopped between storing the key and removing the file.
      if (existsSync(file) && readFileSync(file).equals(stored)) rmSync(file);
      return stored;
    }
    let pem: Buffer;
    let detail: string;
    let takenIn = false;
    try {
      pem = readPrivate(file, { what: 'ACME account key file', code: 'config', chmod: '600' }, 64 * 1024);
      detail = `taken in from ${file}`;
      takenIn = true;
    } catch (e) {
      if (!/cannot read it \(ENOENT\)/.test((e as Error).message)) throw e;
      pem = Buffer.from(await acme.crypto.createPrivateEcdsaKey('P-256'));
      detail = 'made (ECDSA P-256)';
    }
    await this.s.accountKeys.save(name, pem, detail);
    if (takenIn) rmSync(file);
    return pem;
  }

  async collect(pending: RequestRow[], ctx: FetchContext): Promise<Delivery[]> {
    if (pending.length === 0) return [];
    const url = new URL(this.s.directory);
    if (url.protocol !== 'https:') throw new PasstoreError('config', `[ca] acme_directory: expected an https:// URL, not '${this.s.directory}'`);
    const port = Number(url.port || 443);
    const address = await addressOf(url.hostname, null);
    const ca = this.s.caBundle ? readFileSync(this.s.caBundle) : undefined;
    acme.axios.defaults.httpsAgent = new Agent({ ...(ca ? { ca } : {}) });
    // A transport error is reported at once: acme-client would retry it for over a minute.
    (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
    acme.setLogger(() => undefined);
    return ctx.guard.withAccess({ address, port }, async () => {
      await probeDirectory(url, ca);
      const accountKey = await this.#accountKey();
      const client = new acme.Client({ directoryUrl: this.s.directory, accountKey });
      await this.#register(client);
      const out: Delivery[] = [];
      const errors: string[] = [];
      for (const r of pending) {
        try {
          const cert = await client.auto({
            csr: r.pem,
            email: this.s.email,
            termsOfServiceAgreed: true,
            skipChallengeVerification: true,
            challengePriority: ['http-01', 'dns-01'],
            challengeCreateFn: async () => undefined,
            challengeRemoveFn: async () => undefined,
          });
          out.push({ source: `ACME ${url.host} order for ${r.fqdn}`, data: Buffer.from(cert), fromCa: true, settle: async () => undefined });
        } catch (e) {
          // One failed order does not drop the certificates the others got.
          const detail = (e as { message?: string }).message?.split('\n')[0] ?? 'error';
          errors.push(`the order for ${r.fqdn} failed: ${detail.slice(0, 200)}`);
        }
      }
      if (out.length === 0 && errors.length > 0) throw new PasstoreError('io', `acme fetcher: ${errors.join('; ')}`);
      for (const e of errors) ctx.problem(e);
      return out;
    });
  }

  /**
   * Finds the account of this key (onlyReturnExisting: a key restored from a backup, or
   * the run before this one), else creates it, with the external account binding signed
   * here. Registering an existing account again would send an update the CA refuses.
   */
  async #register(client: acme.Client): Promise<void> {
    try {
      await client.createAccount({ onlyReturnExisting: true });
      return;
    } catch (e) {
      // accountDoesNotExist: register below. Anything else shows again there.
      void e;
    }
    const api = (client as unknown as { api: { http: { getResourceUrl(r: string): Promise<string>; getJwk(): object } } }).api;
    const data: Record<string, unknown> = { termsOfServiceAgreed: true, ...(this.s.email ? { contact: [`mailto:${this.s.email}`] } : {}) };
    if (this.s.eabKid && this.s.eabHmacFile) {
      const key = readEabKey(this.s.eabHmacFile);
      try {
        let newAccount: string;
        try {
          newAccount = await api.http.getResourceUrl('newAccount');
        } catch (e) {
          throw new PasstoreError('io', `acme fetcher: ${this.s.directory}: no usable directory (${((e as Error).message ?? 'error').split('\n')[0]?.slice(0, 120)})`);
        }
        const protectedHeader = b64url(JSON.stringify({ alg: this.s.eabAlg, kid: this.s.eabKid, url: newAccount }));
        const payload = b64url(JSON.stringify(api.http.getJwk()));
        const signature = createHmac(this.s.eabAlg === 'HS512' ? 'sha512' : 'sha256', key).update(`${protectedHeader}.${payload}`).digest('base64url');
        data.externalAccountBinding = { protected: protectedHeader, payload, signature };
      } finally {
        key.fill(0);
      }
    }
    try {
      await client.createAccount(data);
    } catch (e) {
      throw new PasstoreError('io', `acme fetcher: account registration refused: ${((e as Error).message ?? '').split('\n')[0]?.slice(0, 200)}`);
    }
  }
}

/** Fetches the directory once, with a timeout, so an unreachable or untrusted server is named at once. */
function probeDirectory(url: URL, ca: Buffer | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ...(ca ? { ca } : {}), timeout: 15_000 }, (res) => {
      res.resume();
      if (res.statusCode === 200) resolve();
      else reject(new PasstoreError('io', `acme fetcher: ${url}: the directory answered ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => reject(new PasstoreError('io', `acme fetcher: ${url}: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' ').slice(0, 240))));
  });
}

/** Where earlier versions kept the account key file (taken into the vault once, then removed). */
export function defaultAccountKeyFile(stateDir: string): string {
  return join(stateDir, 'acme-account-key.pem');
}
