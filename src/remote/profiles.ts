/**
 * Deploy profiles (`[profile NAME]` in passtore.conf): which files a host's certificate
 * and key go to, with what mode and owner, what reloads the service, and how the result
 * is proven. The built-in `grid` is today's pair in crt_path. Parsing is strict: a bad
 * line is a configuration error naming the file, line and key.
 */
import { PasstoreError } from '../errors.js';

/** What a file holds: the certificate, the key, the issuing chain, both of those, or key then certificate. */
export type FileKind = 'cert' | 'key' | 'chain' | 'fullchain' | 'bundle';

export interface ProfileFile {
  kind: FileKind;
  /** An absolute path; `{fqdn}` and `{host}` (the first label) are replaced per host. */
  path: string;
  mode: number;
  owner: string;
  group: string;
}

export interface DeployProfile {
  name: string;
  files: ProfileFile[];
  /** An argument vector run as root on the host after the files are in place ({fqdn}, {host} replaced). */
  reload?: string[];
  /** `verify = tls PORT`: the service on PORT must then present the deployed certificate. */
  verifyTlsPort?: number;
  /** What a failed reload or check does: report it, or put the previous files back too. */
  onFailure: 'report' | 'rollback';
}

/** The built-in profile: hostcert.pem 0644 and hostkey.pem 0400, owner root, in crt_path. */
export const GRID = 'grid';

const KIND = /^(cert|key|chain|fullchain|bundle)(?:_[a-z0-9]+)?$/;
const PATH = /^\/[A-Za-z0-9._/{}+@%=,-]+$/;
const NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
/** A profile's name, as in `[profile NAME]` and `host profile`. */
export const PROFILE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * Reads one `[profile NAME]` section's keys.
 * @throws through `fail(key)` (a configuration error naming file, line and key)
 */
export function parseProfile(name: string, body: Record<string, string>, fail: (key: string) => (why: string) => never): DeployProfile {
  if (!PROFILE_NAME.test(name)) fail('\u0000header')('a profile name is lowercase letters, digits, _ and - (at most 32)');
  if (name === GRID) fail('\u0000header')('grid is the built-in profile; give yours another name');
  const profile: DeployProfile = { name, files: [], onFailure: 'report' };
  for (const [key, value] of Object.entries(body)) {
    const kind = KIND.exec(key)?.[1] as FileKind | undefined;
    if (kind) {
      profile.files.push(parseFile(kind, value, fail(key)));
      continue;
    }
    if (key === 'reload') {
      const argv = value.split(/\s+/).filter(Boolean);
      if (argv.length === 0) fail(key)('expected a command (an argument vector, run without a shell)');
      if (argv.some((w) => /[\u0000-\u001f]/.test(w))) fail(key)('control characters are not allowed');
      profile.reload = argv;
    } else if (key === 'verify') {
      const m = /^tls\s+(\d{1,5})$/.exec(value);
      if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) fail(key)('expected tls PORT (1 to 65535)');
      profile.verifyTlsPort = Number(m![1]);
    } else if (key === 'on_failure') {
      if (value !== 'rollback' && value !== 'report') fail(key)('expected rollback or report');
      profile.onFailure = value as 'rollback' | 'report';
    } else {
      fail(key)('unknown key (cert, key, chain, fullchain, bundle, with an optional _SUFFIX; reload, verify, on_failure)');
    }
  }
  if (profile.files.length === 0) fail('\u0000header')('a profile needs at least one file (cert, key, chain, fullchain or bundle)');
  return profile;
}

function parseFile(kind: FileKind, value: string, fail: (why: string) => never): ProfileFile {
  const words = value.split(/\s+/);
  if (words.length !== 3) fail('expected PATH MODE OWNER:GROUP, such as /etc/pki/tls/certs/{fqdn}.crt 0644 root:root');
  const [path, modeText, owned] = words as [string, string, string];
  if (!PATH.test(path) || path.split('/').some((c) => c === '..' || c === '.') || path.endsWith('/')) {
    fail(`'${path}' is not an absolute file path of letters, digits and . _ / { } + @ % = , -`);
  }
  if (/\{(?!fqdn\}|host\})/.test(path) || /(?<!\{fqdn|\{host)\}/.test(path)) fail(`'${path}': only {fqdn} and {host} are replaced`);
  if (!/^0?[0-7]{3}$/.test(modeText)) fail(`'${modeText}' is not an octal mode such as 0644`);
  const mode = parseInt(modeText, 8);
  if ((kind === 'key' || kind === 'bundle') && (mode & 0o007) !== 0) fail(`a file holding the private key must not be readable by others (mode ${modeText})`);
  if ((mode & 0o022) !== 0) fail(`mode ${modeText} lets others than the owner write it`);
  const [owner, group, extra] = owned.split(':');
  if (extra !== undefined || !owner || !group || !NAME.test(owner) || !NAME.test(group)) fail(`'${owned}' is not OWNER:GROUP (names, resolved on the host)`);
  return { kind, path, mode, owner: owner!, group: group! };
}

/** The built-in grid profile in `crtPath`. */
export function gridProfile(crtPath: string): DeployProfile {
  return {
    name: GRID,
    files: [
      { kind: 'cert', path: `${crtPath}/hostcert.pem`, mode: 0o644, owner: 'root', group: 'root' },
      { kind: 'key', path: `${crtPath}/hostkey.pem`, mode: 0o400, owner: 'root', group: 'root' },
    ],
    onFailure: 'report',
  };
}

/** A profile's path for one host. */
export function pathFor(template: string, fqdn: string): string {
  return template.replaceAll('{fqdn}', fqdn).replaceAll('{host}', fqdn.split('.')[0]!);
}

/** The profiles of a host, resolved against the configuration; unknown names are refused. */
export function profilesOf(hostProfiles: string[] | null | undefined, configured: Record<string, DeployProfile> | undefined, crtPath: string): DeployProfile[] {
  return (hostProfiles ?? [GRID]).map((name) => {
    if (name === GRID) return gridProfile(crtPath);
    const p = configured?.[name];
    if (!p) throw new PasstoreError('config', `deploy profile ${name} is not in the configuration (a [profile ${name}] section)`);
    return p;
  });
}

/** A stored certificate and the issuing chain stored with it (null: none). */
export interface CertWithChain {
  pem: string;
  chainPem: string | null;
}

const endLine = (pem: string) => (pem.endsWith('\n') ? pem : `${pem}\n`);

/** Refuses, naming the host, a profile with a chain file for a certificate stored without a chain. */
export function checkChain(profiles: DeployProfile[], cert: CertWithChain, fqdn: string): void {
  if (!cert.chainPem && profiles.some((p) => p.files.some((f) => f.kind === 'chain'))) {
    throw new PasstoreError('not-found', `${fqdn}: no issuing chain is stored with the certificate, which a chain file needs (getcrt a file with the CA's chain)`);
  }
}

/** A file's content for a kind (the key as PEM bytes; the caller wipes what holds the key). */
export function contentFor(kind: FileKind, stored: CertWithChain, keyPem: Buffer, fqdn: string): Buffer {
  const cert = endLine(stored.pem);
  const chain = stored.chainPem ? endLine(stored.chainPem) : '';
  switch (kind) {
    case 'cert':
      return Buffer.from(cert);
    case 'key':
      return Buffer.from(keyPem);
    case 'chain':
      if (!chain) throw new PasstoreError('not-found', `${fqdn}: no issuing chain is stored with the certificate, which a chain file needs (getcrt a file with the CA's chain)`);
      return Buffer.from(chain);
    case 'fullchain':
      return Buffer.from(cert + chain);
    case 'bundle':
      return Buffer.concat([keyPem, Buffer.from(cert)]);
  }
}
