/**
 * Key derivation for key slots. A passphrase slot uses scrypt with its parameters and
 * salt stored beside it (so they can be raised later without breaking old slots); a key
 * file slot uses HKDF-SHA256 over the file's 256 random bits.
 */
import { randomBytes, scrypt as scryptCb } from 'node:crypto';
import { hkdf32 } from './hkdf.js';
import { PasstoreError } from '../errors.js';
import { testSwitchesOn } from '../faults.js';

export interface ScryptParams {
  alg: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
}

export interface HkdfParams {
  alg: 'hkdf-sha256';
  salt: string;
}

export type KdfParams = ScryptParams | HkdfParams;

/** The default (and, outside the tests, the least) scrypt cost of a new slot: N = 2^17, r = 8, p = 1. */
export const DEFAULT_LOG_N = 17;

/**
 * Default scrypt cost: N = 2^17, r = 8, p = 1 (128 MiB): 0.35–0.4 s to unlock on this machine.
 * `PASSTORE_SCRYPT_LOG_N` lowers it only for test vaults, and only with the test switch
 * set (faults.ts); it is never below 2^14.
 */
export function defaultScrypt(): ScryptParams {
  const env = Number(process.env.PASSTORE_SCRYPT_LOG_N);
  const logN = testSwitchesOn() && Number.isInteger(env) && env >= 14 && env <= 20 ? env : DEFAULT_LOG_N;
  return { alg: 'scrypt', N: 2 ** logN, r: 8, p: 1, salt: randomBytes(16).toString('base64') };
}

/**
 * Refuses to make a passphrase slot cheaper than the default cost, unless the test switch
 * is set: a slot below 2^17 is a test vault's.
 */
export function checkNewSlotCost(params: KdfParams): void {
  if (params.alg === 'scrypt' && params.N < 2 ** DEFAULT_LOG_N && !testSwitchesOn()) {
    throw new PasstoreError('config', `refusing a key slot with scrypt N = ${params.N}, below the default 2^${DEFAULT_LOG_N} (a test setting)`);
  }
}

/** True when a stored slot's parameters are below the default cost (a test vault's slot). */
export function belowDefaultCost(kdfText: string): boolean {
  try {
    const p = parseKdf(kdfText);
    return p.alg === 'scrypt' && p.N < 2 ** DEFAULT_LOG_N;
  } catch {
    return false;
  }
}

export function newHkdf(): HkdfParams {
  return { alg: 'hkdf-sha256', salt: randomBytes(16).toString('base64') };
}

/**
 * The most work a slot may ask of an unlock: N·r·p at most 2^23 (N = 2^20 with r = 8 and
 * p = 1, about 3 s and 1 GiB here), N a power of two up to 2^20, r up to 32, p up to 16. A
 * slot crafted with larger values is refused as an integrity error instead of hanging
 * the unlock or exhausting memory.
 */
export const SCRYPT_MAX = { logN: 20, r: 32, p: 16, work: 2 ** 23 } as const;

function scryptWithinBounds(N: number, r: number, p: number): boolean {
  return Number.isInteger(r) && Number.isInteger(p) && (N & (N - 1)) === 0 && N <= 2 ** SCRYPT_MAX.logN && r <= SCRYPT_MAX.r && p <= SCRYPT_MAX.p && N * r * p <= SCRYPT_MAX.work;
}

/** Parses stored parameters, refusing anything malformed, weaker than the minimum or beyond SCRYPT_MAX. */
export function parseKdf(text: string): KdfParams {
  let p: { alg?: string; N?: number; r?: number; p?: number; salt?: unknown };
  try {
    p = JSON.parse(text);
  } catch {
    throw new PasstoreError('integrity', 'a key slot has unreadable parameters');
  }
  if (p.alg === 'scrypt' && Number.isInteger(p.N) && p.N! >= 2 ** 14 && p.r! >= 1 && p.p! >= 1 && typeof p.salt === 'string') {
    if (!scryptWithinBounds(p.N!, p.r!, p.p!)) throw new PasstoreError('integrity', `a key slot asks for scrypt N=${p.N} r=${p.r} p=${p.p}, beyond the bound (N at most 2^${SCRYPT_MAX.logN}, N·r·p at most 2^23): refused`);
    return { alg: 'scrypt', N: p.N!, r: p.r!, p: p.p!, salt: p.salt };
  }
  if (p.alg === 'hkdf-sha256' && typeof p.salt === 'string') return { alg: 'hkdf-sha256', salt: p.salt };
  throw new PasstoreError('integrity', 'a key slot has unknown or too weak parameters');
}

/** Derives a slot's 256-bit key from a passphrase or key file bytes. */
export async function deriveSlotKey(params: KdfParams, secret: Buffer): Promise<Buffer> {
  const salt = Buffer.from(params.salt, 'base64');
  if (params.alg === 'hkdf-sha256') {
    return hkdf32(secret, salt, 'passtore key file slot');
  }
  const maxmem = 256 * params.N * params.r + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scryptCb(secret, salt, 32, { N: params.N, r: params.r, p: params.p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}
