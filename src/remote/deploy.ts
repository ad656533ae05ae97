/**
 * Deploying a key and certificate to their host (SPEC section 7): in one root command
 * whose standard input carries the certificate's bytes, the key's, then the line
 * `install`, written as new files in the same directory with mode 0644 (certificate) and
 * 0400 (key) and owner root, the previous pair copied to dated backups (not a file
 * identical to the new one; the key's made 0400), then renamed into place (key first, then certificate, run to
 * its end by the host's own shell even if passtore dies meanwhile; a certificate that
 * cannot be replaced puts the previous key back), and read back and compared by hash.
 * Input that ends before the `install` line (passtore died, the connection dropped)
 * removes the new files and changes nothing.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config.js';
import { PasstoreError } from '../errors.js';
import { step } from '../faults.js';
import type { SshConnection } from '../ssh/ssh.js';
import type { CertRow, HostRow, Store } from '../storage/store.js';
import { namesHost, parseCertificate } from '../x509/certificate.js';
import { loadPkcs8, pkcs8Pem } from '../x509/keys.js';
import type { Context } from '../command.js';
import type { AuditEvent } from '../vault/audit.js';
import { deployProfiles } from './profile-deploy.js';
import { checkChain, GRID, profilesOf } from './profiles.js';

const CERT = 'hostcert.pem';
const KEY = 'hostkey.pem';
const NEW = '.passtore-new';
/** The line after both files' bytes that lets the host put them in place. */
const GO = 'install';

// A fixed script; its only inputs are positional parameters ($1 directory, $2 stamp, $3
// and $4 the certificate's and the key's length) and standard input. Each new file is
// created with its final mode (umask 0133: 0644; umask 0377: 0400, never readable by
// others while it is written). A short input cannot reach the GO line: `head -c` takes
// at most its count, so `read` sees GO only after all the bytes of both files.
const WRITE_NEW = [
  'set -e',
  '[ -d "$1" ] || mkdir -p -m 0755 "$1"',
  'cd "$1"',
  // Left-overs of an interrupted deploy (rm only when there are some: one process less).
  `{ [ ! -e ${CERT}${NEW} ] && [ ! -L ${CERT}${NEW} ] && [ ! -e ${KEY}${NEW} ] && [ ! -L ${KEY}${NEW} ]; } || rm -f ${CERT}${NEW} ${KEY}${NEW}`,
  // noclobber: each new file is created exclusively, never written through what is there.
  'set -C',
  'umask 0133',
  `head -c "$3" > ${CERT}${NEW}`,
  'umask 0377',
  `head -c "$4" > ${KEY}${NEW}`,
  'umask 0022',
  'set +C',
  'IFS= read -r go || go=',
  `[ "$go" = ${GO} ] || { rm -f ${CERT}${NEW} ${KEY}${NEW}; echo "the input ended before the install line: nothing was changed" >&2; exit 1; }`,
].join('\n');

// After WRITE_NEW in the same script.
const INSTALL = [
  // Created by root, they are root's; only a set-group-ID directory gives them another group.
  `[ ! -g . ] || chown root:root ${CERT}${NEW} ${KEY}${NEW}`,
  `backup=no`,
  `same=0`,
  // What the key was before: none, same (identical to the new one) or copied (to KEY.$2).
  `oldkey=none`,
  `files="${CERT}${NEW} ${KEY}${NEW}"`,
  // A file already identical to the new one gets no new dated copy.
  `if [ -e ${CERT} ]; then if cmp -s ${CERT} ${CERT}${NEW}; then same=$((same + 1)); else cp -p ${CERT} ${CERT}.$2; files="$files ${CERT}.$2"; backup=yes; fi; fi`,
  // The key's copy is mode 0400 whatever the old key's mode was (a hand-made 0644 key's
  // backup would stay readable by all), and from its creation on: made under umask 0377
  // by a cp that keeps owner and times but not the mode, so it is never more than 0400.
  // Each its own command: under set -e a failure inside an && list does not stop the script.
  `if [ -e ${KEY} ]; then if cmp -s ${KEY} ${KEY}${NEW}; then same=$((same + 1)); oldkey=same; else (umask 0377; cp --preserve=ownership,timestamps --remove-destination ${KEY} ${KEY}.$2); chmod 0400 ${KEY}.$2; files="$files ${KEY}.$2"; backup=yes; oldkey=copied; fi; fi`,
  // The new files and the backups on disk before the renames, the renames after: only
  // these files and this directory are flushed (a sync before coreutils 8.24 flushes all).
  // $files holds our fixed names and the stamp only: its word splitting is intended.
  // Nothing is written to standard output before the renames: a connection gone by then
  // cannot stop the script half-way.
  'sync -- $files',
  `mv -f ${KEY}${NEW} ${KEY}`,
  // The certificate's rename failing (an immutable file, a read-only mount) must not leave
  // the new key beside the old certificate: the previous key goes back (from its dated
  // copy; nothing to do when it was identical; removed when there was none), and the
  // message says which pair is in place. A power cut between the two renames remains a window.
  `if ! err=$(mv -f ${CERT}${NEW} ${CERT} 2>&1); then`,
  `  err=\${err##*: }; rm -f ${CERT}${NEW}`,
  `  case $oldkey in`,
  `    copied) if cp -p ${KEY}.$2 ${KEY}${NEW} 2>/dev/null && mv -f ${KEY}${NEW} ${KEY} 2>/dev/null; then back=yes; else back=no; fi;;`,
  `    same) back=yes;;`,
  `    *) if rm -f ${KEY} 2>/dev/null; then back=yes; else back=no; fi;;`,
  `  esac`,
  '  sync -- . || :',
  `  if [ $back = yes ]; then`,
  `    if [ $oldkey = none ]; then was='nothing was changed (the new key was removed again)'; else was='the previous pair is back in place'; fi`,
  `    echo "${CERT} could not be replaced ($err); $was" >&2`,
  `  else`,
  `    echo "${CERT} could not be replaced ($err) and the previous key could not be put back: a MIXED pair is in place (the new ${KEY}, the old ${CERT}); the previous key is in ${KEY}.$2" >&2`,
  `  fi`,
  `  exit 1`,
  `fi`,
  'sync -- .',
  `sha256sum ${CERT} ${KEY}`,
  `stat -c '%n %a %U' ${CERT} ${KEY}`,
  'echo "backup=$backup"',
  'echo "same=$same"',
].join('\n');

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

export interface Deployed {
  /** The dated backups' suffix, or undefined when there was no previous pair (or it was identical). */
  backupStamp: string | undefined;
  /** Both files were already identical to the new ones: nothing was backed up. */
  unchanged?: boolean;
}

/**
 * Deploys one pair into `dir` on the connected host; throws unless read back equal. One
 * remote command (through sudo when the host wants it) does it all: one channel, no SFTP,
 * so a deploy costs the connection and one command's round trips.
 */
export async function deployPair(conn: SshConnection, dir: string, certPem: string, keyPem: Buffer): Promise<Deployed> {
  // Milliseconds in the stamp: two deploys in one second keep both backups.
  const at = new Date().toISOString().replace(/[-:]/g, '').replace(/\.(\d{3})Z$/, '.$1Z');
  const cert = Buffer.from(certPem);
  // The key's bytes go as they are (the caller wipes keyPem).
  const r = await conn.execRoot(['sh', '-c', `${WRITE_NEW}\n${INSTALL}`, 'sh', dir, at, String(cert.length), String(keyPem.length)], [
    () => step('deploy-write-cert'),
    cert,
    () => step('deploy-write-key'),
    keyPem,
    () => step('deploy-install'),
    Buffer.from(`${GO}\n`),
  ]);
  if (r.code !== 0) {
    await conn.execRoot(['rm', '-f', `${dir}/${CERT}${NEW}`, `${dir}/${KEY}${NEW}`]).catch(() => undefined);
    throw new PasstoreError('io', `${conn.target.name}: installing the pair failed: ${r.stderr.trim().split('\n')[0] || `status ${r.code}`}`);
  }
  const { backup } = checkReadBack(conn.target.name, r.stdout, certPem, keyPem);
  return { backupStamp: backup ? at : undefined, unchanged: r.stdout.split('\n').some((l) => l.trim() === 'same=2') };
}

/**
 * Checks what the host printed after the install (its `sha256sum` and `stat` lines, and
 * whether it made backups) against the vault's pair: the host's output is outside input.
 * @throws PasstoreError ('mismatch') unless both files read back equal, mode 0644/0400, owner root
 */
export function checkReadBack(name: string, stdout: string, certPem: string, keyPem: Buffer): { backup: boolean } {
  const lines = stdout.split('\n').map((l) => l.trim());
  // Each file must be named once in each kind of line, with exactly the expected value.
  const seen = new Map<string, { sums: string[]; modes: string[] }>();
  const of = (file: string) => seen.get(file) ?? seen.set(file, { sums: [], modes: [] }).get(file)!;
  for (const l of lines) {
    const sum = /^([0-9a-f]{64})\s+(\S+)$/.exec(l);
    if (sum) of(sum[2]!).sums.push(sum[1]!);
    const mode = /^(\S+) (\d+ \S+)$/.exec(l);
    if (mode) of(mode[1]!).modes.push(mode[2]!);
  }
  const want = [
    { file: CERT, sum: sha256(certPem), mode: '644 root' },
    { file: KEY, sum: sha256(keyPem), mode: '400 root' },
  ];
  if (!want.every((w) => seen.get(w.file)?.sums.join() === w.sum)) {
    throw new PasstoreError('mismatch', `${name}: the deployed files do not read back equal to the vault's pair`);
  }
  if (!want.every((w) => seen.get(w.file)?.modes.join() === w.mode)) {
    throw new PasstoreError('mismatch', `${name}: the deployed files do not have mode 0644/0400 and owner root`);
  }
  return { backup: lines.includes('backup=yes') };
}

/** How a deploy reached its host, when not as root with the root password: ` as deploy through sudo, with the deploy key`. */
export function viaOf(conn: SshConnection): string {
  const parts = [conn.username !== 'root' ? ` as ${conn.username}${conn.sudo ? ' through sudo' : ''}` : '', conn.authMethod === 'key' ? ' with the deploy key' : ''].filter(Boolean);
  return parts.join(',');
}

/** What deploying a host's current pair uses of the session's context. */
export type DeployDeps = Pick<Context, 'config' | 'store' | 'vault' | 'remote' | 'change' | 'audit'>;

/** Checks the pair locally, before any connection: it matches, and names this host. */
export async function pairFor(ctx: DeployDeps, host: HostRow, force: boolean): Promise<{ cert: CertRow; keyPem: Buffer }> {
  const cert = (await ctx.store.listCertificates(host.id)).find((c) => c.state === 'current');
  if (!cert) throw new PasstoreError('not-found', `${host.fqdn} has no certificate to deploy`);
  const key = (await ctx.store.listKeys(host.id)).find((k) => k.id === cert.keyId);
  if (!key) throw new PasstoreError('integrity', `${host.fqdn}: the certificate's private key is missing`);
  const { cert: x509 } = parseCertificate(cert.pem);
  if (!namesHost(x509, host.fqdn)) throw new PasstoreError('mismatch', `${host.fqdn}: the certificate does not name this host; refused before any connection`);
  if (Date.parse(cert.notAfter) <= Date.now() && !force) throw new PasstoreError('policy', `${host.fqdn}: the certificate expired on ${cert.notAfter.slice(0, 10)}; refused (use --force)`);
  const pkcs8 = ctx.vault.openKey(key);
  try {
    if (!x509.checkPrivateKey(loadPkcs8(pkcs8))) throw new PasstoreError('mismatch', `${host.fqdn}: the certificate does not match its private key; refused before any connection`);
    return { cert, keyPem: pkcs8Pem(pkcs8) };
  } finally {
    pkcs8.fill(0);
  }
}

/** A finished deploy waiting for the transaction that records it. */
interface PendingRecord {
  certId: number;
  event: AuditEvent;
  resolve(): void;
  reject(e: unknown): void;
}

/** Per context: the records waiting, and the commit loop while one runs. */
const recorders = new WeakMap<DeployDeps, { waiting: PendingRecord[]; running?: Promise<void> }>();

/**
 * Records a finished deploy (the certificate's deployment date and its audit record) and
 * resolves once that is committed. Hosts that finish while a commit runs share the next
 * one (group commit): a pattern deploy writes a few transactions instead of one per host,
 * and never reports a host whose record is not stored.
 */
function recordDeploy(ctx: DeployDeps, certId: number, event: AuditEvent): Promise<void> {
  let r = recorders.get(ctx);
  if (!r) recorders.set(ctx, (r = { waiting: [] }));
  const rec = r;
  return new Promise<void>((resolve, reject) => {
    rec.waiting.push({ certId, event, resolve, reject });
    rec.running ??= commitRecords(ctx, rec);
  });
}

async function commitRecords(ctx: DeployDeps, r: { waiting: PendingRecord[]; running?: Promise<void> }): Promise<void> {
  while (r.waiting.length > 0) {
    // One turn of the event loop first: hosts finishing together go in one transaction.
    await new Promise((resolve) => setImmediate(resolve));
    const batch = r.waiting.splice(0);
    const at = new Date().toISOString();
    try {
      await ctx.change(async (tx) => {
        for (const b of batch) await tx.setCertificateDeployed(b.certId, at);
        await ctx.audit(batch.map((b) => b.event), tx);
      });
      for (const b of batch) b.resolve();
    } catch (e) {
      for (const b of batch) b.reject(e);
    }
  }
  // In the same turn as the check above: a record added later starts a new loop.
  r.running = undefined;
}

/**
 * Deploys a host's current pair: checked locally first (it matches, names the host, is
 * not expired unless forced), then written to the host, and recorded. Returns a result line.
 * `signal` (Ctrl-C, SIGHUP, SIGTERM) gives up only while SSH connects, nothing sent yet
 * (PasstoreError 'cancelled'); once connected the deploy runs to its end.
 */
export async function deployHost(ctx: DeployDeps, host: HostRow, force = false, signal?: AbortSignal): Promise<string> {
  // Profiles are resolved before anything is checked or sent: an unknown one is refused.
  const profiles = profilesOf(host.profiles, ctx.config.profiles, ctx.config.crtPath);
  const { cert, keyPem } = await pairFor(ctx, host, force);
  try {
    checkChain(profiles, cert, host.fqdn);
    if (!(profiles.length === 1 && profiles[0]!.name === GRID)) {
      const done = await ctx.remote.asRoot(host, async (conn) => ({ ...(await deployProfiles({ remote: ctx.remote, audit: (e) => ctx.audit(e) }, conn, host, profiles, cert, keyPem)), via: viaOf(conn) }), { signal });
      await recordDeploy(ctx, cert.id, { action: 'deploy', target: host.fqdn, outcome: 'ok', detail: `serial ${cert.serial}, ${done.line}${done.via}` });
      return `deployed ${done.line}${done.via}`;
    }
    const done = await ctx.remote.asRoot(host, async (conn) => ({ ...(await deployPair(conn, ctx.config.crtPath, cert.pem, keyPem)), via: viaOf(conn) }), { signal });
    await recordDeploy(ctx, cert.id, { action: 'deploy', target: host.fqdn, outcome: 'ok', detail: `serial ${cert.serial}${done.backupStamp ? `, backup .${done.backupStamp}` : ''}${done.via}` });
    return `deployed to ${ctx.config.crtPath}${done.via}${done.backupStamp ? ` (previous pair kept as .${done.backupStamp})` : done.unchanged ? ' (the same pair was in place; no backup made)' : ' (first deployment)'}`;
  } catch (e) {
    await ctx.audit({ action: 'deploy', target: host.fqdn, outcome: 'failed', detail: e instanceof PasstoreError ? e.message.slice(0, 200) : 'error' }).catch(() => undefined);
    throw e;
  } finally {
    keyPem.fill(0);
  }
}
