/**
 * Backups on offline media (SPEC section 9). A snapshot is one file: a cleartext header
 * (vault id, schema version, the key slots and the wrapped data key: what opening it
 * needs) and a body holding every row of every table, encrypted with AES-256-GCM under a
 * key derived from the root key, so the operators' passphrases open a backup as they open
 * the vault. Secrets inside stay ciphertext under the data key besides. A manifest gives
 * the SHA-256 of the snapshot. Each copy is written under a temporary name, renamed, read
 * back and checked; restore checks the manifest and the passphrase before it writes
 * anything, and writes everything in one transaction into an empty store.
 */
import { writeNewFile } from './safe-file.js';
import { step } from './faults.js';
import { createHash } from 'node:crypto';
import { hkdf32 } from './vault/hkdf.js';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PasstoreError } from './errors.js';
import { migrationsFor } from './storage/migrate.js';
import type { SqlDriver, SqlValue } from './storage/driver.js';
import { associatedData, open, seal } from './vault/aead.js';
import { Ciphertext } from './vault/ciphertext.js';
import { stateOf, type VaultState } from './vault/rollback.js';
import type { VaultRow } from './storage/store.js';

/** Tables in the order rows are restored (parents first). */
export const BACKUP_TABLES = ['vault', 'key_slots', 'hosts', 'entries', 'entry_history', 'private_keys', 'cert_requests', 'certificates', 'audit', 'outbox', 'account_keys', 'ssh_keys'] as const;

const MAGIC = 'passtore-backup 1';
const SNAPSHOT = 'snapshot.ptb';
const MANIFEST = 'manifest.json';

export interface Manifest {
  format: typeof MAGIC;
  vaultId: string;
  schema: number;
  createdAt: string;
  sha256: string;
  bytes: number;
  rows: Record<string, number>;
  /**
   * The vault's state in this copy (vault/rollback.ts), sealed under the audit key:
   * checked against the restored database, and against what this machine saw.
   */
  head?: VaultState;
}

type Rows = Record<string, Array<Record<string, unknown>>>;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function encodeValue(v: unknown): unknown {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { $b64: Buffer.from(v).toString('base64') };
  if (typeof v === 'bigint') return Number(v);
  return v;
}

function decodeValue(v: unknown): SqlValue {
  if (v && typeof v === 'object' && '$b64' in (v as Record<string, unknown>)) return Buffer.from(String((v as { $b64: string }).$b64), 'base64');
  return v as SqlValue;
}

/** The key that seals a backup body: derived from the root key, like the audit key. */
export function backupKey(root: Buffer, vaultId: string): Buffer {
  return hkdf32(root, Buffer.from(vaultId), 'passtore backup');
}

/** Reads every row of every table (in one transaction, so the snapshot is consistent). */
export async function readAllRows(db: SqlDriver): Promise<Rows> {
  return db.transaction(async (tx) => {
    const rows: Rows = {};
    for (const t of BACKUP_TABLES) rows[t] = (await tx.all(`SELECT * FROM ${t}`)).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, encodeValue(v)])));
    return rows;
  });
}

/** The vault row of a snapshot's rows, as the store reads it (for its state). */
export function vaultRowOf(rows: Rows): VaultRow {
  const v = rows.vault?.[0];
  if (!v) throw new PasstoreError('integrity', 'backup: the snapshot holds no vault record');
  const b64 = (x: unknown) => Ciphertext.fromStorage(Buffer.from(String((x as { $b64?: string })?.$b64 ?? ''), 'base64'));
  return { id: String(v.id), createdAt: String(v.created_at), dataKeyGeneration: Number(v.data_key_generation), dataKeyCiphertext: b64(v.data_key_ciphertext), auditHead: v.audit_head == null ? null : String(v.audit_head), keyring: v.keyring == null ? null : String(v.keyring), summary: v.summary == null ? null : String(v.summary) };
}

/**
 * Builds the snapshot file's bytes and its manifest. The clear header holds only what
 * opening needs (the vault id, schema, time, key slots); the vault record and its audit
 * head are in the encrypted body, and the manifest carries the sealed state.
 */
export function buildSnapshot(rows: Rows, root: Buffer, vaultId: string, schema: number, auditKey?: Buffer): { bytes: Buffer; manifest: Manifest } {
  const header = { format: MAGIC, vaultId, schema, createdAt: new Date().toISOString(), keySlots: rows.key_slots };
  const key = backupKey(root, vaultId);
  const body = seal(key, Buffer.from(JSON.stringify(rows)), associatedData(vaultId, 'backup', header.createdAt));
  key.fill(0);
  const headerBytes = Buffer.from(`${JSON.stringify(header)}\n`);
  const bytes = Buffer.concat([headerBytes, Buffer.from(body.bytes.toString('base64')), Buffer.from('\n')]);
  const counts = Object.fromEntries(Object.entries(rows).map(([t, r]) => [t, r.length]));
  const head = auditKey ? stateOf(vaultRowOf(rows), auditKey) : undefined;
  return { bytes, manifest: { format: MAGIC, vaultId, schema, createdAt: header.createdAt, sha256: sha256(bytes), bytes: bytes.length, rows: counts, ...(head ? { head } : {}) } };
}

function writeDurably(path: string, data: Buffer): void {
  // Exclusive, no-follow, mode set on the descriptor: nothing planted on the medium is followed.
  writeNewFile(path, data, 0o600);
}

/**
 * Writes one copy into `dir/passtore-<stamp>/` via a temporary directory renamed into
 * place, then reads it back and checks it. Returns the copy's path.
 */
export function writeCopy(dir: string, bytes: Buffer, manifest: Manifest): string {
  const stamp = manifest.createdAt.replace(/[-:]/g, '');
  const final = join(dir, `passtore-${stamp}`);
  const tmp = join(dir, `.passtore-${stamp}.partial`);
  // A missing directory is refused, not made: it is most likely an unmounted medium.
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new PasstoreError('io', `${dir} is not a directory (is the medium mounted?)`);
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { mode: 0o700 });
    writeDurably(join(tmp, SNAPSHOT), bytes);
    writeDurably(join(tmp, MANIFEST), Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
    step('backup-written');
    renameSync(tmp, final);
    step('backup-renamed');
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof PasstoreError) throw e;
    throw new PasstoreError('io', `${dir}: cannot write the backup (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  verifyCopy(final);
  return final;
}

/** A backup copy read back: its header and the bytes, after the manifest check. */
export interface Copy {
  path: string;
  manifest: Manifest;
  header: { format: string; vaultId: string; schema: number; createdAt: string; keySlots: Array<Record<string, unknown>> };
  body: Ciphertext;
}

/** The time a copy's manifest gives (not yet authenticated), or undefined when unreadable. */
function manifestTime(path: string): string | undefined {
  try {
    const m = JSON.parse(readFileSync(join(path, MANIFEST), 'utf8')) as Manifest;
    return typeof m.createdAt === 'string' ? m.createdAt : undefined;
  } catch {
    return undefined;
  }
}

/** The copies in `dir` with the times their manifests give, newest first (by that time, not by name). */
export function listCopies(dir: string): Array<{ path: string; createdAt: string | undefined }> {
  const copies = readdirSync(dir)
    .filter((n) => /^passtore-\d{8}T\d{6}(\.\d{3})?Z$/.test(n))
    .map((n) => ({ path: join(dir, n), createdAt: manifestTime(join(dir, n)) }));
  return copies.sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? '') || b.path.localeCompare(a.path));
}

/**
 * Finds the newest copy in `dir` (a copy itself, or a directory holding copies), by the
 * time in its manifest: a directory's name says nothing (an old copy may be renamed).
 */
export function findCopy(dir: string): string {
  try {
    if (readdirSync(dir).includes(MANIFEST)) return dir;
    const copies = listCopies(dir);
    if (copies.length === 0) throw new PasstoreError('not-found', `${dir}: no passtore backup in it`);
    return copies[0]!.path;
  } catch (e) {
    if (e instanceof PasstoreError) throw e;
    throw new PasstoreError('io', `${dir}: cannot read it (${(e as NodeJS.ErrnoException).code})`);
  }
}

/** Reads a copy and checks it against its manifest; names the file that is wrong. */
export function verifyCopy(path: string): Copy {
  const manifestPath = join(path, MANIFEST);
  const snapshotPath = join(path, SNAPSHOT);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (e) {
    throw new PasstoreError('integrity', `${manifestPath}: ${(e as NodeJS.ErrnoException).code ? `cannot read it (${(e as NodeJS.ErrnoException).code})` : 'damaged (not a manifest)'}`);
  }
  if (manifest.format !== MAGIC || typeof manifest.sha256 !== 'string') throw new PasstoreError('integrity', `${manifestPath}: not a passtore backup manifest`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(snapshotPath);
  } catch (e) {
    throw new PasstoreError('integrity', `${snapshotPath}: cannot read it (${(e as NodeJS.ErrnoException).code})`);
  }
  if (bytes.length !== manifest.bytes || sha256(bytes) !== manifest.sha256) {
    throw new PasstoreError('integrity', `${snapshotPath}: damaged (its SHA-256 does not match the manifest); use another copy`);
  }
  const nl = bytes.indexOf(0x0a);
  try {
    const header = JSON.parse(bytes.subarray(0, nl).toString('utf8')) as Copy['header'];
    const body = Ciphertext.fromStorage(Buffer.from(bytes.subarray(nl + 1).toString('utf8').trim(), 'base64'));
    if (header.vaultId !== manifest.vaultId) throw new Error('vault id');
    if (header.createdAt !== manifest.createdAt) throw new PasstoreError('integrity', `${manifestPath}: its time (${manifest.createdAt}) is not the snapshot's (${header.createdAt}): altered`);
    return { path, manifest, header, body };
  } catch (e) {
    if (e instanceof PasstoreError) throw e;
    throw new PasstoreError('integrity', `${snapshotPath}: damaged (unreadable header)`);
  }
}

/** Decrypts a copy's rows with the root key its slots gave. */
export function openCopy(copy: Copy, root: Buffer): Rows {
  const key = backupKey(root, copy.header.vaultId);
  const plain = open(key, copy.body, associatedData(copy.header.vaultId, 'backup', copy.header.createdAt));
  key.fill(0);
  if (!plain) throw new PasstoreError('integrity', `${join(copy.path, SNAPSHOT)}: does not decrypt with this vault's key`);
  const rows = JSON.parse(plain.toString('utf8')) as Rows;
  plain.fill(0);
  return rows;
}

/** The schema version this passtore writes. */
export function currentSchema(dialect: 'sqlite' | 'mysql'): number {
  return migrationsFor(dialect).at(-1)?.version ?? 0;
}

/** Writes every row into an empty store, in one transaction. */
export async function restoreRows(db: SqlDriver, rows: Rows): Promise<number> {
  return db.transaction(async (tx) => {
    const existing = await tx.all('SELECT id FROM vault');
    if (existing.length > 0) throw new PasstoreError('exists', 'the target already holds a vault; restore only into an empty database');
    let n = 0;
    for (const t of BACKUP_TABLES) {
      for (const row of rows[t] ?? []) {
        const cols = Object.keys(row);
        if (!cols.every((c) => /^[a-z][a-z0-9_]{0,63}$/.test(c))) throw new PasstoreError('integrity', `backup: a ${t} row has an unknown column`);
        await tx.run(`INSERT INTO ${t} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, cols.map((c) => decodeValue(row[c])));
        n++;
        if (t === 'entries' && n > 0) step('restore-in-transaction');
      }
    }
    return n;
  });
}
