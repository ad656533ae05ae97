/**
 * Deploying a host's pair by its deploy profiles: every file of every profile goes to
 * the host in one root command (the contents on standard input, never in an argument),
 * which writes each as a new file beside its place, gives it its mode and owner, keeps a
 * dated backup of each file it replaces (none for a file already identical; owner and
 * times kept, mode the old one narrowed to the planned one, never wider), flushes,
 * renames them all into place, flushes, and prints each file's SHA-256, mode and owner.
 * The host's shell runs that command to its end even when passtore dies meanwhile, so
 * the host's files are all old or all new. Then each profile's reload runs (an argument
 * vector), and `verify = tls PORT` checks through the guard that the service presents the
 * certificate just deployed; with `on_failure = rollback` a failure puts the previous
 * files back, each with its previous mode and owner, and reloads again.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { PasstoreError } from '../errors.js';
import { step } from '../faults.js';
import type { ExecResult, SshConnection } from '../ssh/ssh.js';
import type { HostRow } from '../storage/store.js';
import type { AuditEvent } from '../vault/audit.js';
import { contentFor, pathFor, type CertWithChain, type DeployProfile } from './profiles.js';
import type { Remote } from './remote.js';

const NEW = '.passtore-new';

// The fixed script: $1 the backup stamp, then per file PATH MODE OWNER:GROUP LENGTH.
const INSTALL_FILES = [
  'set -e',
  'stamp=$1; shift',
  'each() { f=$1; shift; while [ $# -gt 0 ]; do "$f" "$1" "$2" "$3" "$4"; shift 4; done; }',
  'plain() { if [ -L "$1" ] || { [ -e "$1" ] && [ ! -f "$1" ]; }; then echo "$1 is not a plain file" >&2; exit 3; fi; }',
  `write() { mkdir -p -m 0755 "\${1%/*}"; rm -f "$1${NEW}"; (umask 077; head -c "$4" > "$1${NEW}"); if [ "$(wc -c < "$1${NEW}")" -ne "$4" ]; then echo "short input for $1" >&2; exit 1; fi; chown "$3" "$1${NEW}"; chmod "$2" "$1${NEW}"; }`,
  // The dated backup of a changed file keeps its owner and times but gets the old mode
  // narrowed to the planned one (old & planned: a 0644 key planned 0440 is kept 0440),
  // made under umask 0777 by a cp that does not keep the mode, so it is never wider
  // while written; each step a command of its own, so that set -e stops at a failed one.
  // The old mode is printed with it (four octal digits): a rollback gives it back.
  'keep() {',
  '  if [ ! -e "$1" ]; then echo "new $1"; return; fi',
  `  if cmp -s "$1" "$1${NEW}"; then echo "same $1"; return; fi`,
  `  old=$(stat -c %a "$1"); old=$(printf '%04o' $((0$old))); m=$(printf '%04o' $((0$old & 0$2)))`,
  '  (umask 0777; cp --preserve=ownership,timestamps --remove-destination "$1" "$1.$stamp")',
  '  chmod "$m" "$1.$stamp"',
  '  echo "backup $1 $old"',
  '}',
  `place() { mv -f "$1${NEW}" "$1"; }`,
  `show() { sha256sum "$1"; stat -c '%n %a %U:%G' "$1"; }`,
  'each plain "$@"',
  'each write "$@"',
  'each keep "$@"',
  'sync',
  'each place "$@"',
  'sync',
  'each show "$@"',
].join('\n');

// Puts files back: $1 the stamp, then PATH ACTION MODE triples: restore the backup
// (MODE, octal, the file's mode before the deploy: the backup's own is narrowed), remove
// a file that did not exist before, or keep one that was identical (MODE -). Each backup
// is copied beside its place and given its old mode first; all are flushed, then renamed
// over the files, and the removals done.
const ROLLBACK = [
  'set -e',
  'stamp=$1; shift',
  'each() { f=$1; shift; while [ $# -gt 0 ]; do "$f" "$1" "$2" "$3"; shift 3; done; }',
  'mode() { case $1 in [0-7][0-7][0-7][0-7]) ;; *) echo "not an octal mode for $2: $1" >&2; exit 2;; esac; }',
  `ready() { if [ "$2" = restore ]; then mode "$3" "$1"; rm -f "$1${NEW}"; cp -p "$1.$stamp" "$1${NEW}"; chmod "$3" "$1${NEW}"; fi; }`,
  `put() { if [ "$2" = restore ]; then mv -f "$1${NEW}" "$1"; elif [ "$2" = remove ]; then rm -f "$1"; fi; }`,
  'each ready "$@"',
  'sync',
  'each put "$@"',
  'sync',
].join('\n');

/** One file to put on the host. */
interface Planned {
  path: string;
  mode: number;
  owner: string;
  content: Buffer;
}

/** What a profile deploy needs. */
export interface ProfileDeployDeps {
  remote: Remote;
  audit(event: AuditEvent): Promise<void>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const firstLine = (r: ExecResult) => r.stderr.trim().split('\n')[0] || `status ${r.code}`;

/** The files of all profiles for a host, checked for two profiles writing one path. */
function plan(profiles: DeployProfile[], host: HostRow, cert: CertWithChain, keyPem: Buffer): Planned[] {
  const out: Planned[] = [];
  for (const p of profiles) {
    for (const f of p.files) {
      const path = pathFor(f.path, host.fqdn);
      if (out.some((o) => o.path === path)) throw new PasstoreError('config', `${host.fqdn}: two profile files go to ${path}`);
      out.push({ path, mode: f.mode, owner: `${f.owner}:${f.group}`, content: contentFor(f.kind, cert, keyPem, host.fqdn) });
    }
  }
  return out;
}

/**
 * Checks the host's `sha256sum` and `stat` lines against the planned files (outside
 * input: each file named once in each kind of line, with exactly the expected value).
 * @throws PasstoreError ('mismatch') naming the first file that differs
 */
export function checkFilesReadBack(name: string, stdout: string, files: Array<{ path: string; sha256: string; mode: string; owner: string }>): void {
  const sums = new Map<string, string[]>();
  const stats = new Map<string, string[]>();
  for (const l of stdout.split('\n').map((x) => x.trim())) {
    const sum = /^([0-9a-f]{64})\s+(\S+)$/.exec(l);
    if (sum) sums.set(sum[2]!, [...(sums.get(sum[2]!) ?? []), sum[1]!]);
    const st = /^(\S+) ([0-7]{3,4}) (\S+:\S+)$/.exec(l);
    if (st) stats.set(st[1]!, [...(stats.get(st[1]!) ?? []), `${st[2]} ${st[3]}`]);
  }
  for (const f of files) {
    if (sums.get(f.path)?.join() !== f.sha256) throw new PasstoreError('mismatch', `${name}: ${f.path} does not read back equal to the vault's`);
    if (stats.get(f.path)?.join() !== `${f.mode} ${f.owner}`) throw new PasstoreError('mismatch', `${name}: ${f.path} does not have mode ${f.mode} and owner ${f.owner}`);
  }
}

/** The SHA-256 (hex) of the certificate a TLS service presents. */
export function fingerprintOfPem(certPem: string): string {
  return sha256(new X509Certificate(certPem).raw);
}

/**
 * Deploys by profiles on a connected host; returns the result line's tail. A reload or
 * check that fails throws one line (after the rollback, when the profile asks for it).
 */
export async function deployProfiles(deps: ProfileDeployDeps, conn: SshConnection, host: HostRow, profiles: DeployProfile[], cert: CertWithChain, keyPem: Buffer): Promise<{ line: string; backups: number }> {
  const files = plan(profiles, host, cert, keyPem);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.(\d{3})Z$/, '.$1Z');
  const input = Buffer.concat(files.map((f) => f.content));
  let r: ExecResult;
  try {
    step('deploy-write-cert');
    r = await conn.execRoot(['sh', '-c', INSTALL_FILES, 'sh', stamp, ...files.flatMap((f) => [f.path, f.mode.toString(8).padStart(4, '0'), f.owner, String(f.content.length)])], input);
  } finally {
    input.fill(0);
    for (const f of files) f.content.fill(0);
  }
  if (r.code !== 0) {
    await conn.execRoot(['rm', '-f', ...files.map((f) => `${f.path}${NEW}`)]).catch(() => undefined);
    throw new PasstoreError('io', `${conn.target.name}: installing the files failed: ${firstLine(r)}`);
  }
  step('deploy-install');
  // Per file: same, new, or backup with the old file's mode (outside input: only an
  // octal mode is taken, and it goes to ROLLBACK as a parameter, never into its text).
  const status = new Map<string, string>();
  const oldMode = new Map<string, string>();
  for (const l of r.stdout.split('\n')) {
    const m = /^(?:(same|new) (\S+)|backup (\S+) ([0-7]{4}))$/.exec(l.trim());
    if (m?.[1]) status.set(m[2]!, m[1]);
    else if (m) {
      status.set(m[3]!, 'backup');
      oldMode.set(m[3]!, m[4]!);
    }
  }
  const expected = plan(profiles, host, cert, keyPem).map((f) => {
    const e = { path: f.path, sha256: sha256(f.content), mode: f.mode.toString(8), owner: f.owner };
    f.content.fill(0);
    return e;
  });
  checkFilesReadBack(conn.target.name, r.stdout, expected);
  // Without its status a file could not be put back (nor its backup's mode undone).
  const untold = files.find((f) => !status.has(f.path));
  if (untold) throw new PasstoreError('mismatch', `${conn.target.name}: the host did not say whether ${untold.path} was new, the same or backed up`);
  const backups = [...status.values()].filter((s) => s === 'backup').length;
  const rollback = async () => {
    const triples = files.flatMap((f) => (status.get(f.path) === 'backup' ? [f.path, 'restore', oldMode.get(f.path)!] : [f.path, status.get(f.path) === 'new' ? 'remove' : 'keep', '-']));
    const rb = await conn.execRoot(['sh', '-c', ROLLBACK, 'sh', stamp, ...triples]);
    if (rb.code !== 0) throw new PasstoreError('io', `${conn.target.name}: putting the previous files back failed: ${firstLine(rb)}`);
  };
  const wanted = fingerprintOfPem(cert.pem);
  for (const profile of profiles) {
    // {fqdn} and {host} in the reload's words too (each stays one word: no shell).
    const p = { ...profile, reload: profile.reload?.map((w) => pathFor(w, host.fqdn)) };
    let problem: string | undefined;
    if (p.reload) {
      step('deploy-reload');
      const rl = await conn.execRoot(p.reload);
      await deps.audit({ action: 'reload', target: host.fqdn, outcome: rl.code === 0 ? 'ok' : 'failed', detail: `profile ${p.name}: ${p.reload.join(' ').slice(0, 120)}${rl.code === 0 ? '' : ` (${firstLine(rl).slice(0, 80)})`}` });
      if (rl.code !== 0) problem = `the reload of profile ${p.name} (${p.reload.join(' ')}) failed: ${firstLine(rl)}`;
    }
    if (!problem && p.verifyTlsPort) {
      const presented = await deps.remote.presentedCertificate(host, p.verifyTlsPort).catch((e: unknown) => (e instanceof PasstoreError ? e.message : String(e)));
      const ok = presented === wanted;
      await deps.audit({ action: 'verify-tls', target: host.fqdn, outcome: ok ? 'ok' : 'failed', detail: `profile ${p.name}, port ${p.verifyTlsPort}` });
      if (!ok) problem = `port ${p.verifyTlsPort} does not present the deployed certificate (${/^[0-9a-f]{64}$/.test(presented) ? `it presents ${presented.slice(0, 16)}…` : presented})`;
    }
    if (problem) {
      if (p.onFailure === 'rollback') {
        await rollback();
        const again = p.reload ? await conn.execRoot(p.reload) : undefined;
        await deps.audit({ action: 'rollback', target: host.fqdn, outcome: again && again.code !== 0 ? 'failed' : 'ok', detail: `profile ${p.name}` });
        throw new PasstoreError('io', `${host.fqdn}: ${problem}; the previous files were put back${p.reload ? (again!.code === 0 ? ' and reloaded' : ', but reloading them failed too') : ''}`);
      }
      throw new PasstoreError('io', `${host.fqdn}: ${problem}`);
    }
  }
  const same = [...status.values()].filter((s) => s === 'same').length;
  const proofs = profiles.filter((p) => p.verifyTlsPort).map((p) => `port ${p.verifyTlsPort} presents it`);
  return { line: `${files.length} files of ${profiles.map((p) => p.name).join(', ')}${same ? ` (${same} unchanged)` : ''}${profiles.some((p) => p.reload) ? ', reloaded' : ''}${proofs.length ? `, ${proofs.join(', ')}` : ''}`, backups };
}
