/**
 * `passtore restore DIR`: brings a vault back from a backup copy into an empty store (a
 * new SQLite file or an empty MariaDB database). The copy is checked against its manifest
 * and the passphrase against the copy's key slots before anything is written; then every
 * row goes in in one transaction, and the restored audit trail is verified.
 */
import { rmSync } from 'node:fs';
import { currentSchema, findCopy, listCopies, openCopy, vaultRowOf, verifyCopy, type Copy } from './backup.js';
import { dataDir } from './config.js';
import { legacyAuditKey, openAuditKey, parseKeyring } from './vault/keyring.js';
import { headCopyPath, readHeadCopy, rolledBack, stateOf, verifyState } from './vault/rollback.js';
import type { Output, Prompter } from './command.js';
import type { Config } from './config.js';
import { PasstoreError } from './errors.js';
import { Session } from './session.js';
import { openStore } from './storage/open.js';
import { verifyChain } from './vault/audit.js';
import { Vault } from './vault/vault.js';
import type { Secret } from './secret.js';

export interface RestoreResult {
  copy: string;
  rows: number;
  auditRecords: number;
}

export async function restoreFromBackup(config: Config, dir: string, operator: string, prompt: Prompter, out: Output, options: { stateDir?: string } = {}): Promise<RestoreResult> {
  const copy = verifyCopy(findCopy(dir));
  const stateDir = options.stateDir ?? dataDir();
  out.line(`backup ${copy.path}: manifest and SHA-256 verified (${copy.manifest.createdAt}, vault ${copy.manifest.vaultId})`);
  const store = await openStore(config.db, config.dbPasswordFile);
  let passphrase: Secret | undefined;
  try {
    if (copy.header.schema > currentSchema(store.dialect)) {
      throw new PasstoreError('storage', `the backup's schema is version ${copy.header.schema}, newer than this passtore knows; upgrade passtore first`);
    }
    if (await store.getVault()) throw new PasstoreError('exists', `${store.location} already holds a vault; restore only into an empty database`);
    passphrase = await prompt.secret(`Passphrase for ${operator} (of the backup)`);
    let rows;
    const root = await Vault.rootFromSlots(copy.header.vaultId, copy.header.keySlots, operator, passphrase);
    try {
      rows = openCopy(copy, root);
      await confirmAge(copy, dir, rows, root, stateDir, prompt, out);
    } finally {
      root.fill(0);
    }
    // The operator chose this state: the copy of the state this machine kept for the
    // vault (vault/rollback.ts) would refuse it, and is replaced at the unlock below.
    rmSync(headCopyPath(stateDir, copy.header.vaultId), { force: true });
    const count = await store.importRows(rows);
    out.line(`restored ${count} rows into ${store.location}`);
  } catch (e) {
    passphrase?.wipe();
    throw e;
  } finally {
    await store.close();
  }
  // Open the restored vault as the operator would (the same passphrase), and check its audit trail.
  const session = await Session.open({ config, prompt, out, terminal: false, operator, ...(options.stateDir ? { stateDir: options.stateDir } : {}) });
  try {
    try {
      await session.unlock(1, passphrase);
    } finally {
      passphrase.wipe();
    }
    const rows = await session.store.listAudit();
    const report = verifyChain(rows, session.vault.auditKey()!, (await session.store.getVault())?.auditHead);
    if (report.problems.length > 0) throw new PasstoreError('integrity', `the restored audit trail does not verify: ${report.problems[0]}`);
    await session.audit({ action: 'restore', target: copy.path, outcome: 'ok', detail: copy.manifest.sha256.slice(0, 16) });
    out.line(`audit trail verified: ${report.records} records`);
    return { copy: copy.path, rows: Object.values(copy.manifest.rows).reduce((a, b) => a + b, 0), auditRecords: report.records };
  } finally {
    await session.close();
  }
}

/** How long ago `iso` was, in words. */
function age(iso: string, now = Date.now()): string {
  const hours = Math.max(0, (now - Date.parse(iso)) / 3_600_000);
  if (hours < 48) return `${Math.round(hours)} hour${Math.round(hours) === 1 ? '' : 's'} old`;
  return `${Math.round(hours / 24)} days old`;
}

/**
 * Shows the copy's age (its time is authenticated once the body decrypted: it is in the
 * body's associated data), checks the manifest's sealed state against the body, and asks
 * before restoring a copy that is not the newest: another copy in DIR is newer, or this
 * machine saw the vault at a later state.
 */
async function confirmAge(copy: Copy, dir: string, rows: Record<string, Array<Record<string, unknown>>>, root: Buffer, stateDir: string, prompt: Prompter, out: Output): Promise<void> {
  const row = vaultRowOf(rows);
  const keyring = parseKeyring(row.keyring);
  const auditKey = keyring ? openAuditKey(root, row.id, keyring) : legacyAuditKey(root, row.id);
  try {
    const state = stateOf(row, auditKey);
    if (copy.manifest.head !== undefined) {
      const head = verifyState(copy.manifest.head, row.id, auditKey);
      if (!head || head.seq !== state.seq || head.hash !== state.hash || head.dataKeyGeneration !== state.dataKeyGeneration || head.rootGeneration !== state.rootGeneration) {
        throw new PasstoreError('integrity', `integrity error: ${copy.path}: the manifest's sealed state does not match the snapshot; use another copy`);
      }
    }
    out.line(`the copy was made at ${copy.header.createdAt.slice(0, 16).replace('T', ' ')} UTC (${age(copy.header.createdAt)}); its audit trail ends at record ${state.seq}`);
    const reasons: string[] = [];
    let newer: string[] = [];
    try {
      newer = listCopies(dir).filter((c) => c.path !== copy.path && (c.createdAt ?? '') > copy.header.createdAt).map((c) => `${c.path} (${c.createdAt})`);
    } catch {
      newer = [];
    }
    if (newer.length > 0) reasons.push(`${dir} holds a newer copy: ${newer[0]}`);
    const seen = readHeadCopy(stateDir, row.id, auditKey);
    const lost = seen ? rolledBack(state, seen) : undefined;
    if (lost) reasons.push(`this machine saw the vault at a later state at ${seen!.at.slice(0, 16).replace('T', ' ')}: restoring it rolls back what came after (${lost})`);
    if (reasons.length > 0) {
      for (const r of reasons) out.line(`this copy is not the newest: ${r}`);
      if (!(await prompt.confirm('Restore this older copy anyway?'))) throw new PasstoreError('cancelled', 'nothing was restored');
    }
  } finally {
    auditKey.fill(0);
  }
}
