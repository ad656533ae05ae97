/**
 * The Store on any SQL dialect. One SQL text serves both dialects wherever they agree;
 * wildcards reach SQL only as escaped LIKE patterns built by `names.ts`.
 */
import { Ciphertext } from '../vault/ciphertext.js';
import { readAllRows, restoreRows } from '../backup.js';
import { PasstoreError } from '../errors.js';
import { globPrefix, globToLike, LIKE_ESCAPE, storedName } from '../names.js';
import type { Row, SqlDriver, SqlValue } from './driver.js';
import type { AccountKeyRow, LeaseRow, UnsentMail, MailRow, AuditRow, CertRow, EntryName, EntryRow, EntryStamp, HistoryRow, HostRow, KeyRow, KeyState, NewEntry, RequestRow, RequestState, SlotKind, SlotRow, SshKeyRow, SshKeyState, Store, VaultRow } from './store.js';

const ct = (v: unknown): Ciphertext => Ciphertext.fromStorage(v as Buffer);
const ctOrNull = (v: unknown): Ciphertext | null => (v == null ? null : ct(v));

function toSlot(r: Row): SlotRow {
  return {
    id: Number(r.id),
    kind: r.kind as SlotKind,
    name: String(r.name),
    kdf: String(r.kdf),
    rootKeyCiphertext: ct(r.root_key_ciphertext),
    failedAttempts: Number(r.failed_attempts),
    createdAt: String(r.created_at),
    createdBy: String(r.created_by),
  };
}

function toHost(r: Row): HostRow {
  return {
    id: Number(r.id),
    fqdn: storedName('host', r.fqdn),
    address: r.address == null ? null : String(r.address),
    port: Number(r.port),
    createdAt: String(r.created_at),
    sshHostKey: r.ssh_host_key == null ? null : String(r.ssh_host_key),
    loginUser: r.login_user == null ? null : String(r.login_user),
    loginSudo: Number(r.login_sudo ?? 0) === 1,
    profiles: r.profiles == null || r.profiles === '' ? null : String(r.profiles).split(' '),
    drift: r.drift == null ? null : String(r.drift),
  };
}

function toSshKey(r: Row): SshKeyRow {
  return {
    id: Number(r.id),
    publicKey: String(r.public_key),
    fingerprint: String(r.fingerprint),
    state: String(r.state) as SshKeyState,
    keyCiphertext: ct(r.key_ciphertext),
    createdAt: String(r.created_at),
    createdBy: String(r.created_by),
  };
}

function toEntry(r: Row): EntryRow {
  return {
    id: Number(r.id),
    hostId: Number(r.host_id),
    fqdn: storedName('host', r.fqdn),
    user: storedName('user', r.user),
    service: storedName('service', r.service),
    version: Number(r.version),
    state: r.state as EntryRow['state'],
    secretCiphertext: ctOrNull(r.secret_ciphertext),
    updatedAt: String(r.updated_at),
    updatedBy: String(r.updated_by),
    pendingCiphertext: ctOrNull(r.pending_ciphertext),
    pendingVersion: r.pending_version == null ? null : Number(r.pending_version),
  };
}

function toHistory(r: Row): HistoryRow {
  return {
    id: Number(r.id),
    fqdn: storedName('host', r.fqdn),
    user: storedName('user', r.user),
    service: storedName('service', r.service),
    version: Number(r.version),
    secretCiphertext: ctOrNull(r.secret_ciphertext),
    reason: r.reason as HistoryRow['reason'],
    archivedAt: String(r.archived_at),
    archivedBy: String(r.archived_by),
  };
}

function toAudit(r: Row): AuditRow {
  return {
    seq: Number(r.seq),
    at: String(r.at),
    operator: String(r.operator),
    action: String(r.action),
    target: String(r.target),
    outcome: String(r.outcome),
    detail: String(r.detail),
    prevHash: String(r.prev_hash),
    hash: String(r.hash),
    mac: r.mac == null ? null : String(r.mac),
  };
}

function toKey(r: Row): KeyRow {
  return {
    id: Number(r.id),
    hostId: Number(r.host_id),
    fqdn: storedName('host', r.fqdn),
    spkiSha256: String(r.spki_sha256),
    keyType: String(r.key_type),
    state: r.state as KeyState,
    origin: r.origin as KeyRow['origin'],
    keyCiphertext: ct(r.key_ciphertext),
    createdAt: String(r.created_at),
    createdBy: String(r.created_by),
  };
}

function toRequest(r: Row): RequestRow {
  return {
    id: Number(r.id),
    hostId: Number(r.host_id),
    fqdn: storedName('host', r.fqdn),
    keyId: Number(r.key_id),
    subject: String(r.subject),
    sans: String(r.sans),
    pem: String(r.pem),
    state: r.state as RequestState,
    createdAt: String(r.created_at),
    updatedAt: String(r.updated_at),
  };
}

function toCert(r: Row): CertRow {
  return {
    id: Number(r.id),
    hostId: Number(r.host_id),
    fqdn: storedName('host', r.fqdn),
    keyId: Number(r.key_id),
    spkiSha256: String(r.spki_sha256),
    fingerprintSha256: String(r.fingerprint_sha256),
    subject: String(r.subject),
    issuer: String(r.issuer),
    serial: String(r.serial),
    sans: String(r.sans),
    notBefore: String(r.not_before),
    notAfter: String(r.not_after),
    pem: String(r.pem),
    chainPem: r.chain_pem == null ? null : String(r.chain_pem),
    state: r.state as CertRow['state'],
    storedAt: String(r.stored_at),
    storedBy: String(r.stored_by),
    deployedAt: r.deployed_at == null ? null : String(r.deployed_at),
    ...(r.key_spki_sha256 == null ? {} : { keySpkiSha256: String(r.key_spki_sha256), keyType: String(r.key_type) }),
  };
}

const KEY_SELECT = 'SELECT k.*, h.fqdn FROM private_keys k JOIN hosts h ON h.id = k.host_id';
const REQUEST_SELECT = 'SELECT r.*, h.fqdn FROM cert_requests r JOIN hosts h ON h.id = r.host_id';
const CERT_SELECT =
  'SELECT c.*, h.fqdn, k.spki_sha256 AS key_spki_sha256, k.key_type AS key_type FROM certificates c JOIN hosts h ON h.id = c.host_id LEFT JOIN private_keys k ON k.id = c.key_id';

/** Rows per multi-row INSERT: well under both back ends' limits on bound values. */
const BATCH_ROWS = 200;

const ENTRY_COLUMNS = 'e.id, e.host_id, h.fqdn, e.user, e.service, e.version, e.state, e.secret_ciphertext, e.updated_at, e.updated_by, e.pending_ciphertext, e.pending_version';

/** SQL for "fqdn matches this glob": an indexed prefix range, then an escaped LIKE. */
function hostFilter(column: string, glob: string): { sql: string; params: SqlValue[] } {
  if (glob === '*') return { sql: '1 = 1', params: [] };
  const prefix = globPrefix(glob);
  const parts: string[] = [];
  const params: SqlValue[] = [];
  if (prefix) {
    // '~' sorts after every character a host name may hold.
    parts.push(`${column} >= ? AND ${column} < ?`);
    params.push(prefix, `${prefix}~`);
  }
  parts.push(`${column} LIKE ? ESCAPE '${LIKE_ESCAPE}'`);
  params.push(globToLike(glob));
  return { sql: parts.join(' AND '), params };
}

export class SqlStore implements Store {
  readonly dialect;
  readonly location: string;

  constructor(private readonly db: SqlDriver, location: string) {
    this.dialect = db.dialect;
    this.location = location;
  }

  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => fn(new SqlStore(tx, this.location)));
  }

  close(): Promise<void> {
    return this.db.close();
  }

  async getVault(lock = false): Promise<VaultRow | undefined> {
    // SQLite's transactions are serial already (BEGIN IMMEDIATE).
    const forUpdate = lock && this.dialect === 'mysql' ? ' FOR UPDATE' : '';
    const [r] = await this.db.all(`SELECT id, created_at, data_key_generation, data_key_ciphertext, audit_head, keyring, summary FROM vault${forUpdate}`);
    if (!r) return undefined;
    return {
      id: String(r.id),
      createdAt: String(r.created_at),
      dataKeyGeneration: Number(r.data_key_generation),
      dataKeyCiphertext: ct(r.data_key_ciphertext),
      auditHead: r.audit_head == null ? null : String(r.audit_head),
      keyring: r.keyring == null ? null : String(r.keyring),
      summary: r.summary == null ? null : String(r.summary),
    };
  }

  async createVault(row: VaultRow): Promise<void> {
    const existing = await this.db.all('SELECT id FROM vault');
    if (existing.length > 0) throw new PasstoreError('exists', `a vault already exists in ${this.location}`);
    await this.db.run('INSERT INTO vault (id, created_at, data_key_generation, data_key_ciphertext, keyring) VALUES (?, ?, ?, ?, ?)', [
      row.id,
      row.createdAt,
      row.dataKeyGeneration,
      row.dataKeyCiphertext.bytes,
      row.keyring ?? null,
    ]);
  }

  async setKeyring(keyring: string): Promise<void> {
    await this.db.run('UPDATE vault SET keyring = ?', [keyring]);
  }

  async setSummary(summary: string): Promise<void> {
    await this.db.run('UPDATE vault SET summary = ?', [summary]);
  }

  async entryStamps(filter?: { ids?: number[]; hostIds?: number[] }): Promise<EntryStamp[]> {
    const select = 'SELECT e.id, e.host_id, h.fqdn, e.user, e.service, e.version, e.state FROM entries e JOIN hosts h ON h.id = e.host_id';
    const toStamp = (r: Record<string, unknown>): EntryStamp => ({ id: Number(r.id), hostId: Number(r.host_id), fqdn: String(r.fqdn), user: String(r.user), service: String(r.service), version: Number(r.version), state: String(r.state) as EntryStamp['state'] });
    if (!filter) return (await this.db.all(select)).map(toStamp);
    const out = new Map<number, EntryStamp>();
    const CHUNK = BATCH_ROWS * 5;
    for (const [column, values] of [['e.id', filter.ids ?? []], ['e.host_id', filter.hostIds ?? []]] as const) {
      for (let i = 0; i < values.length; i += CHUNK) {
        const chunk = values.slice(i, i + CHUNK);
        for (const r of await this.db.all(`${select} WHERE ${column} IN (${chunk.map(() => '?').join(', ')})`, chunk)) out.set(Number(r.id), toStamp(r));
      }
    }
    return [...out.values()];
  }

  async entryStampTexts(): Promise<string[]> {
    if (this.dialect === 'sqlite') {
      // SQLite writes the JSON itself (a quarter of the time of rows turned into objects):
      // the same text as stampText for every name passtore stores (validated names,
      // integer versions). Anything else written with SQL gives another text, and so
      // another tag: it is reported as a change, never taken for the entry it imitates.
      return (await this.db.all('SELECT json_array(h.fqdn, e.user, e.service, e.version, e.state) AS t FROM entries e JOIN hosts h ON h.id = e.host_id')).map((r) => String(r.t));
    }
    // MariaDB: two plain scans cost half its join over every entry, joined here as the join
    // would (an entry whose host is gone is left out). The server writes each entry's part
    // of the JSON (JSON_QUOTE: the same text as JSON.stringify for every name passtore
    // stores; anything else gives another text, reported as a change) after its host's.
    const hosts = new Map<number, string>();
    for (const r of await this.db.all('SELECT id, fqdn FROM hosts')) hosts.set(Number(r.id), `[${JSON.stringify(String(r.fqdn))},`);
    const texts: string[] = [];
    for (const r of await this.db.all("SELECT host_id AS h, CONCAT(JSON_QUOTE(user), ',', JSON_QUOTE(service), ',', version, ',', JSON_QUOTE(state), ']') AS t FROM entries")) {
      const head = hosts.get(Number(r.h));
      if (head !== undefined) texts.push(head + String(r.t));
    }
    return texts;
  }

  async dataVersion(): Promise<number | undefined> {
    if (this.dialect !== 'sqlite') return undefined;
    const [r] = await this.db.all('PRAGMA data_version');
    return r ? Number(r.data_version) : undefined;
  }

  async auditAfter(seq: number, limit?: number): Promise<AuditRow[]> {
    const lim = limit ? ` LIMIT ${Math.max(1, Math.floor(limit))}` : '';
    return (await this.db.all(`SELECT * FROM audit WHERE seq > ? ORDER BY seq${lim}`, [seq])).map(toAudit);
  }


  async getAccountKey(name: string): Promise<AccountKeyRow | undefined> {
    const [r] = await this.db.all('SELECT name, key_ciphertext, created_at FROM account_keys WHERE name = ?', [name]);
    return r ? { name: String(r.name), keyCiphertext: ct(r.key_ciphertext), createdAt: String(r.created_at) } : undefined;
  }

  async addAccountKey(row: AccountKeyRow): Promise<void> {
    await this.db.run('INSERT INTO account_keys (name, key_ciphertext, created_at) VALUES (?, ?, ?)', [row.name, row.keyCiphertext.bytes, row.createdAt]);
  }

  async listAccountKeys(): Promise<AccountKeyRow[]> {
    return (await this.db.all('SELECT name, key_ciphertext, created_at FROM account_keys ORDER BY name')).map((r) => ({ name: String(r.name), keyCiphertext: ct(r.key_ciphertext), createdAt: String(r.created_at) }));
  }

  async setAccountKeyCiphertext(name: string, c: Ciphertext): Promise<void> {
    await this.db.run('UPDATE account_keys SET key_ciphertext = ? WHERE name = ?', [c.bytes, name]);
  }

  async setDataKey(generation: number, wrapped: Ciphertext): Promise<void> {
    await this.db.run('UPDATE vault SET data_key_generation = ?, data_key_ciphertext = ?', [generation, wrapped.bytes]);
  }

  async listSlots(): Promise<SlotRow[]> {
    return (await this.db.all('SELECT * FROM key_slots ORDER BY kind, name')).map(toSlot);
  }

  async getSlot(kind: SlotKind, name: string): Promise<SlotRow | undefined> {
    const [r] = await this.db.all('SELECT * FROM key_slots WHERE kind = ? AND name = ?', [kind, name]);
    return r ? toSlot(r) : undefined;
  }

  async addSlot(row: Omit<SlotRow, 'id' | 'failedAttempts'>): Promise<void> {
    if (await this.getSlot(row.kind, row.name)) {
      throw new PasstoreError('exists', `a ${row.kind} slot named '${row.name}' already exists`);
    }
    await this.db.run(
      'INSERT INTO key_slots (kind, name, kdf, root_key_ciphertext, failed_attempts, created_at, created_by) VALUES (?, ?, ?, ?, 0, ?, ?)',
      [row.kind, row.name, row.kdf, row.rootKeyCiphertext.bytes, row.createdAt, row.createdBy],
    );
  }

  async rewrapSlot(id: number, kdf: string, wrapped: Ciphertext): Promise<void> {
    await this.db.run('UPDATE key_slots SET kdf = ?, root_key_ciphertext = ?, failed_attempts = 0 WHERE id = ?', [kdf, wrapped.bytes, id]);
  }

  async deleteSlot(id: number): Promise<void> {
    await this.db.run('DELETE FROM key_slots WHERE id = ?', [id]);
  }

  async setFailedAttempts(id: number, count: number): Promise<void> {
    await this.db.run('UPDATE key_slots SET failed_attempts = ? WHERE id = ?', [count, id]);
  }

  async setHostKey(id: number, key: string | null): Promise<void> {
    await this.db.run('UPDATE hosts SET ssh_host_key = ? WHERE id = ?', [key, id]);
  }

  async setHostAddress(id: number, address: string | null, port: number): Promise<void> {
    await this.db.run('UPDATE hosts SET address = ?, port = ? WHERE id = ?', [address, port, id]);
  }

  async setHostLogin(id: number, user: string | null, sudo: boolean): Promise<void> {
    await this.db.run('UPDATE hosts SET login_user = ?, login_sudo = ? WHERE id = ?', [user, sudo ? 1 : 0, id]);
  }

  async setHostProfiles(id: number, profiles: string[] | null): Promise<void> {
    await this.db.run('UPDATE hosts SET profiles = ? WHERE id = ?', [profiles ? profiles.join(' ') : null, id]);
  }

  async setHostDrift(id: number, drift: string | null, at: string): Promise<void> {
    await this.db.run('UPDATE hosts SET drift = ?, drift_checked_at = ? WHERE id = ?', [drift, at, id]);
  }

  async listSshKeys(): Promise<SshKeyRow[]> {
    return (await this.db.all('SELECT * FROM ssh_keys ORDER BY id')).map(toSshKey);
  }

  async insertSshKey(row: Omit<SshKeyRow, 'id'>): Promise<number> {
    const r = await this.db.run('INSERT INTO ssh_keys (public_key, fingerprint, state, key_ciphertext, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)', [row.publicKey, row.fingerprint, row.state, row.keyCiphertext.bytes, row.createdAt, row.createdBy]);
    return r.lastId;
  }

  async setSshKeyState(id: number, state: SshKeyState): Promise<void> {
    await this.db.run('UPDATE ssh_keys SET state = ? WHERE id = ?', [state, id]);
  }

  async setSshKeyCiphertext(id: number, c: Ciphertext): Promise<void> {
    await this.db.run('UPDATE ssh_keys SET key_ciphertext = ? WHERE id = ?', [c.bytes, id]);
  }

  async setPending(id: number, c: Ciphertext | null, version: number | null, at: string | null): Promise<void> {
    await this.db.run('UPDATE entries SET pending_ciphertext = ?, pending_version = ?, pending_at = ? WHERE id = ?', [c?.bytes ?? null, version, at, id]);
  }

  async pendingEntries(): Promise<EntryRow[]> {
    return (await this.db.all(`SELECT ${ENTRY_COLUMNS} FROM entries e JOIN hosts h ON h.id = e.host_id WHERE e.pending_ciphertext IS NOT NULL ORDER BY h.fqdn`)).map(toEntry);
  }

  async addHost(row: Omit<HostRow, 'id' | 'sshHostKey'>): Promise<HostRow> {
    if (await this.getHost(row.fqdn)) throw new PasstoreError('exists', `host ${row.fqdn} is already in the vault`);
    const r = await this.db.run('INSERT INTO hosts (fqdn, address, port, created_at) VALUES (?, ?, ?, ?)', [
      row.fqdn,
      row.address,
      row.port,
      row.createdAt,
    ]);
    return { ...row, id: r.lastId, sshHostKey: null };
  }

  async getHost(fqdn: string): Promise<HostRow | undefined> {
    const [r] = await this.db.all('SELECT * FROM hosts WHERE fqdn = ?', [fqdn]);
    return r ? toHost(r) : undefined;
  }

  async findHosts(glob: string, limit?: number): Promise<HostRow[]> {
    const f = hostFilter('fqdn', glob);
    const lim = limit ? ` LIMIT ${Math.max(1, Math.floor(limit))}` : '';
    return (await this.db.all(`SELECT * FROM hosts WHERE ${f.sql} ORDER BY fqdn${lim}`, f.params)).map(toHost);
  }

  async hostNamesWithPrefix(prefix: string, limit: number): Promise<string[]> {
    const rows = await this.db.all<{ fqdn: string }>(
      `SELECT fqdn FROM hosts WHERE fqdn >= ? AND fqdn < ? ORDER BY fqdn LIMIT ${Math.max(1, Math.floor(limit))}`,
      [prefix, `${prefix}~`],
    );
    return rows.map((r) => storedName('host', r.fqdn));
  }

  async removeHost(id: number): Promise<void> {
    await this.db.run('DELETE FROM hosts WHERE id = ?', [id]);
  }

  async countHosts(): Promise<number> {
    const [r] = await this.db.all('SELECT COUNT(*) AS n FROM hosts');
    return Number(r?.n ?? 0);
  }

  async getEntry(fqdn: string, user: string, service: string): Promise<EntryRow | undefined> {
    const [r] = await this.db.all(
      `SELECT ${ENTRY_COLUMNS} FROM entries e JOIN hosts h ON h.id = e.host_id WHERE h.fqdn = ? AND e.user = ? AND e.service = ?`,
      [fqdn, user, service],
    );
    return r ? toEntry(r) : undefined;
  }

  async findEntries(glob: string, user?: string, service?: string): Promise<EntryRow[]> {
    const f = hostFilter('h.fqdn', glob);
    const where = [f.sql];
    const params = [...f.params];
    if (user !== undefined) {
      where.push('e.user = ?');
      params.push(user);
    }
    if (service !== undefined) {
      where.push('e.service = ?');
      params.push(service);
    }
    const rows = await this.db.all(
      `SELECT ${ENTRY_COLUMNS} FROM entries e JOIN hosts h ON h.id = e.host_id WHERE ${where.join(' AND ')} ORDER BY h.fqdn, e.user, e.service`,
      params,
    );
    return rows.map(toEntry);
  }

  async listEntryNames(glob: string): Promise<EntryName[]> {
    const f = hostFilter('h.fqdn', glob);
    const rows = await this.db.all(`SELECT h.fqdn, e.user, e.service, e.state FROM entries e JOIN hosts h ON h.id = e.host_id WHERE ${f.sql} ORDER BY h.fqdn, e.user, e.service`, f.params);
    return rows.map((r) => ({ fqdn: storedName('host', r.fqdn), user: storedName('user', r.user), service: storedName('service', r.service), state: r.state as EntryName['state'] }));
  }

  async insertEntry(row: NewEntry): Promise<void> {
    await this.db.run(
      'INSERT INTO entries (host_id, user, service, version, state, secret_ciphertext, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [row.hostId, row.user, row.service, row.version, row.state, row.secretCiphertext?.bytes ?? null, row.updatedAt, row.updatedBy],
    );
  }

  async insertEntries(rows: NewEntry[]): Promise<void> {
    for (let i = 0; i < rows.length; i += BATCH_ROWS) {
      const chunk = rows.slice(i, i + BATCH_ROWS);
      await this.db.run(
        `INSERT INTO entries (host_id, user, service, version, state, secret_ciphertext, updated_at, updated_by) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
        chunk.flatMap((row) => [row.hostId, row.user, row.service, row.version, row.state, row.secretCiphertext?.bytes ?? null, row.updatedAt, row.updatedBy]),
      );
    }
  }

  async updateEntry(
    id: number,
    expectVersion: number,
    row: Pick<NewEntry, 'version' | 'state' | 'secretCiphertext' | 'updatedAt' | 'updatedBy'>,
  ): Promise<void> {
    const r = await this.db.run(
      'UPDATE entries SET version = ?, state = ?, secret_ciphertext = ?, updated_at = ?, updated_by = ? WHERE id = ? AND version = ?',
      [row.version, row.state, row.secretCiphertext?.bytes ?? null, row.updatedAt, row.updatedBy, id, expectVersion],
    );
    if (r.changes !== 1) throw new PasstoreError('storage', 'the entry was changed by another session meanwhile; nothing was changed, try again');
  }

  async updateEntries(updates: Array<{ id: number; expectVersion: number; row: Pick<NewEntry, 'version' | 'state' | 'secretCiphertext' | 'updatedAt' | 'updatedBy'> }>): Promise<void> {
    const CHUNK = 100;
    for (let i = 0; i < updates.length; i += CHUNK) {
      const chunk = updates.slice(i, i + CHUNK);
      const params: SqlValue[] = [];
      const column = (name: string, value: (u: (typeof chunk)[number]) => SqlValue) => {
        for (const u of chunk) params.push(u.id, value(u));
        return `${name} = CASE id ${chunk.map(() => 'WHEN ? THEN ?').join(' ')} END`;
      };
      const sets = [
        column('version', (u) => u.row.version),
        column('state', (u) => u.row.state),
        column('secret_ciphertext', (u) => u.row.secretCiphertext?.bytes ?? null),
        column('updated_at', (u) => u.row.updatedAt),
        column('updated_by', (u) => u.row.updatedBy),
      ];
      for (const u of chunk) params.push(u.id, u.expectVersion);
      const r = await this.db.run(`UPDATE entries SET ${sets.join(', ')} WHERE ${chunk.map(() => '(id = ? AND version = ?)').join(' OR ')}`, params);
      if (r.changes !== chunk.length) throw new PasstoreError('storage', 'an entry was changed by another session meanwhile; nothing was changed, try again');
    }
  }

  async deleteEntry(id: number): Promise<void> {
    await this.db.run('DELETE FROM entries WHERE id = ?', [id]);
  }

  async archiveEntry(row: Omit<HistoryRow, 'id'>): Promise<void> {
    await this.db.run(
      'INSERT INTO entry_history (fqdn, user, service, version, secret_ciphertext, reason, archived_at, archived_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [row.fqdn, row.user, row.service, row.version, row.secretCiphertext?.bytes ?? null, row.reason, row.archivedAt, row.archivedBy],
    );
  }

  async lastVersion(fqdn: string, user: string, service: string): Promise<number> {
    const [a] = await this.db.all('SELECT MAX(version) AS v FROM entry_history WHERE fqdn = ? AND user = ? AND service = ?', [fqdn, user, service]);
    const current = await this.getEntry(fqdn, user, service);
    return Math.max(Number(a?.v ?? 0), current?.version ?? 0);
  }

  async archiveEntries(rows: Array<Omit<HistoryRow, 'id'>>): Promise<void> {
    for (let i = 0; i < rows.length; i += BATCH_ROWS) {
      const chunk = rows.slice(i, i + BATCH_ROWS);
      await this.db.run(
        `INSERT INTO entry_history (fqdn, user, service, version, secret_ciphertext, reason, archived_at, archived_by) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
        chunk.flatMap((row) => [row.fqdn, row.user, row.service, row.version, row.secretCiphertext?.bytes ?? null, row.reason, row.archivedAt, row.archivedBy]),
      );
    }
  }

  async lastVersions(fqdns: string[], user: string, service: string): Promise<Map<string, number>> {
    const versions = new Map<string, number>(fqdns.map((f) => [f, 0]));
    const raise = (fqdn: unknown, v: unknown) => {
      const f = String(fqdn);
      if (versions.has(f)) versions.set(f, Math.max(versions.get(f)!, Number(v ?? 0)));
    };
    for (let i = 0; i < fqdns.length; i += BATCH_ROWS * 5) {
      const chunk = fqdns.slice(i, i + BATCH_ROWS * 5);
      const marks = chunk.map(() => '?').join(', ');
      for (const r of await this.db.all(`SELECT fqdn, MAX(version) AS v FROM entry_history WHERE user = ? AND service = ? AND fqdn IN (${marks}) GROUP BY fqdn`, [user, service, ...chunk])) raise(r.fqdn, r.v);
      for (const r of await this.db.all(`SELECT h.fqdn, e.version AS v FROM entries e JOIN hosts h ON h.id = e.host_id WHERE e.user = ? AND e.service = ? AND h.fqdn IN (${marks})`, [user, service, ...chunk])) raise(r.fqdn, r.v);
    }
    return versions;
  }

  async listHistory(fqdn: string, user?: string, service?: string): Promise<HistoryRow[]> {
    const where = ['fqdn = ?'];
    const params: SqlValue[] = [fqdn];
    if (user !== undefined) {
      where.push('user = ?');
      params.push(user);
    }
    if (service !== undefined) {
      where.push('service = ?');
      params.push(service);
    }
    return (await this.db.all(`SELECT * FROM entry_history WHERE ${where.join(' AND ')} ORDER BY id`, params)).map(toHistory);
  }

  async distinctUsers(): Promise<string[]> {
    return (await this.db.all<{ user: string }>('SELECT DISTINCT user FROM entries ORDER BY user')).map((r) => storedName('user', r.user));
  }

  async distinctServices(): Promise<string[]> {
    return (await this.db.all<{ service: string }>('SELECT DISTINCT service FROM entries ORDER BY service')).map((r) => storedName('service', r.service));
  }

  async insertKey(row: Omit<KeyRow, 'id' | 'fqdn'>): Promise<number> {
    if (await this.getKeyBySpki(row.spkiSha256)) throw new PasstoreError('exists', 'this private key is already in the vault');
    const r = await this.db.run(
      'INSERT INTO private_keys (host_id, spki_sha256, key_type, state, origin, key_ciphertext, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [row.hostId, row.spkiSha256, row.keyType, row.state, row.origin, row.keyCiphertext.bytes, row.createdAt, row.createdBy],
    );
    return r.lastId;
  }

  async getKeyBySpki(spkiSha256: string): Promise<KeyRow | undefined> {
    const [r] = await this.db.all(`${KEY_SELECT} WHERE k.spki_sha256 = ?`, [spkiSha256]);
    return r ? toKey(r) : undefined;
  }

  async listKeys(hostId: number): Promise<KeyRow[]> {
    return (await this.db.all(`${KEY_SELECT} WHERE k.host_id = ? ORDER BY k.id DESC`, [hostId])).map(toKey);
  }

  async setKeyState(id: number, state: KeyState): Promise<void> {
    await this.db.run('UPDATE private_keys SET state = ? WHERE id = ?', [state, id]);
  }

  async moveKey(id: number, hostId: number, ct: Ciphertext): Promise<void> {
    await this.db.run('UPDATE private_keys SET host_id = ?, key_ciphertext = ? WHERE id = ?', [hostId, ct.bytes, id]);
  }

  async deleteKey(id: number): Promise<void> {
    await this.db.run('DELETE FROM private_keys WHERE id = ?', [id]);
  }

  async insertRequest(row: Omit<RequestRow, 'id' | 'fqdn'>): Promise<number> {
    const r = await this.db.run(
      'INSERT INTO cert_requests (host_id, key_id, subject, sans, pem, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [row.hostId, row.keyId, row.subject, row.sans, row.pem, row.state, row.createdAt, row.updatedAt],
    );
    return r.lastId;
  }

  async listRequests(hostId: number): Promise<RequestRow[]> {
    return (await this.db.all(`${REQUEST_SELECT} WHERE r.host_id = ? ORDER BY r.id DESC`, [hostId])).map(toRequest);
  }

  async openRequests(glob: string): Promise<RequestRow[]> {
    const f = hostFilter('h.fqdn', glob);
    return (await this.db.all(`${REQUEST_SELECT} WHERE r.state IN ('created', 'sent') AND ${f.sql} ORDER BY h.fqdn, r.id`, f.params)).map(toRequest);
  }

  async setRequestState(id: number, state: RequestState, at: string): Promise<void> {
    await this.db.run('UPDATE cert_requests SET state = ?, updated_at = ? WHERE id = ?', [state, at, id]);
  }

  async insertCertificate(row: Omit<CertRow, 'id' | 'fqdn'>): Promise<number> {
    const r = await this.db.run(
      `INSERT INTO certificates (host_id, key_id, spki_sha256, fingerprint_sha256, subject, issuer, serial, sans, not_before, not_after, pem, chain_pem, state, stored_at, stored_by, deployed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [row.hostId, row.keyId, row.spkiSha256, row.fingerprintSha256, row.subject, row.issuer, row.serial, row.sans, row.notBefore, row.notAfter, row.pem, row.chainPem, row.state, row.storedAt, row.storedBy, row.deployedAt],
    );
    return r.lastId;
  }

  async getCertificateByFingerprint(fingerprintSha256: string): Promise<CertRow | undefined> {
    const [r] = await this.db.all(`${CERT_SELECT} WHERE c.fingerprint_sha256 = ?`, [fingerprintSha256]);
    return r ? toCert(r) : undefined;
  }

  async listCertificates(hostId: number): Promise<CertRow[]> {
    return (await this.db.all(`${CERT_SELECT} WHERE c.host_id = ? ORDER BY c.id DESC`, [hostId])).map(toCert);
  }

  async setCertificateState(id: number, state: CertRow['state']): Promise<void> {
    await this.db.run('UPDATE certificates SET state = ? WHERE id = ?', [state, id]);
  }

  async setCertificateDeployed(id: number, at: string): Promise<void> {
    await this.db.run('UPDATE certificates SET deployed_at = ? WHERE id = ?', [at, id]);
  }

  async currentCertificates(glob: string): Promise<CertRow[]> {
    const f = hostFilter('h.fqdn', glob);
    return (await this.db.all(`${CERT_SELECT} WHERE c.state = 'current' AND ${f.sql} ORDER BY h.fqdn`, f.params)).map(toCert);
  }

  async expiringCertificates(beforeIso: string): Promise<CertRow[]> {
    return (await this.db.all(`${CERT_SELECT} WHERE c.state = 'current' AND c.not_after < ? ORDER BY c.not_after`, [beforeIso])).map(toCert);
  }

  async allSecrets(): Promise<{ entries: EntryRow[]; history: HistoryRow[]; keys: KeyRow[]; sshKeys: SshKeyRow[] }> {
    const entries = (await this.db.all(`SELECT ${ENTRY_COLUMNS} FROM entries e JOIN hosts h ON h.id = e.host_id ORDER BY e.id`)).map(toEntry);
    const history = (await this.db.all('SELECT * FROM entry_history ORDER BY id')).map(toHistory);
    const keys = (await this.db.all(`${KEY_SELECT} ORDER BY k.id`)).map(toKey);
    const sshKeys = await this.listSshKeys();
    return { entries, history, keys, sshKeys };
  }

  async setKeyCiphertext(id: number, c: Ciphertext): Promise<void> {
    await this.db.run('UPDATE private_keys SET key_ciphertext = ? WHERE id = ?', [c.bytes, id]);
  }

  async setEntryCiphertext(id: number, c: Ciphertext): Promise<void> {
    await this.db.run('UPDATE entries SET secret_ciphertext = ? WHERE id = ?', [c.bytes, id]);
  }

  async setHistoryCiphertext(id: number, c: Ciphertext): Promise<void> {
    await this.db.run('UPDATE entry_history SET secret_ciphertext = ? WHERE id = ?', [c.bytes, id]);
  }

  async queueMail(row: Pick<MailRow, 'dedupeKey' | 'recipients' | 'subject' | 'body' | 'attachments'>): Promise<boolean> {
    if (row.dedupeKey) {
      const [seen] = await this.db.all('SELECT id FROM outbox WHERE dedupe_key = ?', [row.dedupeKey]);
      if (seen) return false;
    }
    await this.db.run(
      "INSERT INTO outbox (dedupe_key, created_at, recipients, subject, body, attachments, state, attempts) VALUES (?, ?, ?, ?, ?, ?, 'queued', 0)",
      [row.dedupeKey, new Date().toISOString(), row.recipients.join(','), row.subject, row.body, JSON.stringify(row.attachments)],
    );
    return true;
  }

  async queuedMail(): Promise<MailRow[]> {
    const rows = await this.db.all("SELECT * FROM outbox WHERE state = 'queued' ORDER BY id");
    return rows.map((r) => ({
      id: Number(r.id),
      dedupeKey: r.dedupe_key == null ? null : String(r.dedupe_key),
      createdAt: String(r.created_at),
      recipients: String(r.recipients).split(',').filter(Boolean),
      subject: String(r.subject),
      body: String(r.body),
      attachments: JSON.parse(String(r.attachments)) as MailRow['attachments'],
      state: r.state as MailRow['state'],
      claimedBy: r.claimed_by == null ? null : String(r.claimed_by),
      attempts: Number(r.attempts),
      lastError: r.last_error == null ? null : String(r.last_error),
      sentAt: r.sent_at == null ? null : String(r.sent_at),
    }));
  }

  async markMailSent(id: number, at: string): Promise<void> {
    await this.db.run("UPDATE outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1, claimed_by = NULL, claimed_until = NULL WHERE id = ?", [at, id]);
  }

  async markMailFailed(id: number, error: string): Promise<void> {
    // A failed mail goes back to the queue at once (its claim is dropped).
    await this.db.run('UPDATE outbox SET attempts = attempts + 1, last_error = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ?', [error.slice(0, 500), id]);
  }

  async countQueuedMail(): Promise<number> {
    const [r] = await this.db.all("SELECT COUNT(*) AS n FROM outbox WHERE state = 'queued'");
    return Number(r?.n ?? 0);
  }

  async unsentMail(): Promise<UnsentMail[]> {
    const rows = await this.db.all("SELECT id, dedupe_key, created_at, attempts, last_error FROM outbox WHERE state = 'queued' ORDER BY id");
    return rows.map((r) => ({ id: Number(r.id), dedupeKey: r.dedupe_key == null ? null : String(r.dedupe_key), createdAt: String(r.created_at), attempts: Number(r.attempts), lastError: r.last_error == null ? null : String(r.last_error) }));
  }

  async claimMail(id: number, claimant: string, until: string, now: string, deadClaimant?: string): Promise<boolean> {
    const r = await this.db.run("UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ? AND state = 'queued' AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?)", [claimant, until, id, now, deadClaimant ?? '']);
    return r.changes === 1;
  }

  async takeLease(name: string, holder: Omit<LeaseRow, 'name'>, now: string, deadToken?: string): Promise<LeaseRow | undefined> {
    const r = await this.db.run(
      "UPDATE run_lease SET token = ?, machine = ?, pid = ?, started_at = ?, expires_at = ? WHERE name = ? AND (token = '' OR expires_at < ? OR token = ?)",
      [holder.token, holder.machine.slice(0, 255), holder.pid, holder.startedAt, holder.expiresAt, name, now, deadToken ?? ''],
    );
    if (r.changes === 1) return undefined;
    const held = await this.getLease(name);
    if (!held) throw new PasstoreError('storage', `the run lease '${name}' is missing from ${this.location}`);
    return held;
  }

  async extendLease(name: string, token: string, expiresAt: string): Promise<boolean> {
    return (await this.db.run('UPDATE run_lease SET expires_at = ? WHERE name = ? AND token = ?', [expiresAt, name, token])).changes === 1;
  }

  async releaseLease(name: string, token: string): Promise<void> {
    await this.db.run("UPDATE run_lease SET token = '', expires_at = '' WHERE name = ? AND token = ?", [name, token]);
  }

  async getLease(name: string): Promise<LeaseRow | undefined> {
    const [r] = await this.db.all('SELECT * FROM run_lease WHERE name = ?', [name]);
    return r ? { name: String(r.name), token: String(r.token), machine: String(r.machine), pid: Number(r.pid), startedAt: String(r.started_at), expiresAt: String(r.expires_at) } : undefined;
  }

  exportRows(): Promise<Record<string, Array<Record<string, unknown>>>> {
    return readAllRows(this.db);
  }

  importRows(rows: Record<string, Array<Record<string, unknown>>>): Promise<number> {
    return restoreRows(this.db, rows);
  }

  async lastAudit(): Promise<AuditRow | undefined> {
    // MySQL: a locking read, so concurrent appends queue behind each other instead of
    // both taking the same sequence number (SQLite transactions are serial already).
    const lock = this.dialect === 'mysql' ? ' FOR UPDATE' : '';
    const [r] = await this.db.all(`SELECT * FROM audit ORDER BY seq DESC LIMIT 1${lock}`);
    return r ? toAudit(r) : undefined;
  }

  async appendAudit(row: AuditRow): Promise<void> {
    await this.db.run(
      'INSERT INTO audit (seq, at, operator, action, target, outcome, detail, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [row.seq, row.at, row.operator, row.action, row.target, row.outcome, row.detail, row.prevHash, row.hash, row.mac],
    );
  }

  async appendAudits(rows: AuditRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += BATCH_ROWS) {
      const chunk = rows.slice(i, i + BATCH_ROWS);
      await this.db.run(
        `INSERT INTO audit (seq, at, operator, action, target, outcome, detail, prev_hash, hash, mac) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
        chunk.flatMap((row) => [row.seq, row.at, row.operator, row.action, row.target, row.outcome, row.detail, row.prevHash, row.hash, row.mac]),
      );
    }
  }

  async listAudit(options: { targetLike?: string; limit?: number } = {}): Promise<AuditRow[]> {
    const params: SqlValue[] = [];
    let where = '';
    if (options.targetLike) {
      where = `WHERE target LIKE ? ESCAPE '${LIKE_ESCAPE}'`;
      params.push(options.targetLike);
    }
    if (options.limit) {
      const rows = await this.db.all(`SELECT * FROM audit ${where} ORDER BY seq DESC LIMIT ${Math.max(1, Math.floor(options.limit))}`, params);
      return rows.map(toAudit).reverse();
    }
    return (await this.db.all(`SELECT * FROM audit ${where} ORDER BY seq`, params)).map(toAudit);
  }

  async setAuditHead(head: string, summary?: string): Promise<void> {
    if (summary === undefined) await this.db.run('UPDATE vault SET audit_head = ?', [head]);
    else await this.db.run('UPDATE vault SET audit_head = ?, summary = ?', [head, summary]);
  }

  async setAuditMac(seq: number, mac: string): Promise<void> {
    await this.db.run('UPDATE audit SET mac = ? WHERE seq = ?', [mac, seq]);
  }
}
