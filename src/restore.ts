/**
 * `passtore restore DIR`: brings a vault back from a backup copy into an empty store (a
 * new SQLite file or an empty MariaDB database). The copy is checked against its manifest
 * and the passphrase against the copy's key slots before anything is written; then every
 * row goes in in one transaction, and the restored audit trail is verified.
 */
import { currentSchema, findCopy, openCopy, verifyCopy } from './backup.js';
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
    } finally {
      root.fill(0);
    }
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
