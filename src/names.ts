/**
 * Names and syntax (SPEC section 2): hosts, entry specs `[user@]host[:service]`,
 * host patterns with the glob wildcards `*` and `?`, and remote files `user@host:path`.
 * Everything is validated strictly; anything that does not parse is refused with a
 * one-line error naming the bad part. Wildcards become regular expressions or escaped
 * SQL LIKE patterns here, and nowhere else.
 */
import { PasstoreError } from './errors.js';

export const DEFAULT_USER = 'root';
export const DEFAULT_SERVICE = 'ssh';
const MAX_INPUT = 300;

/** An entry's identity: the cleartext triple the vault binds each ciphertext to. */
export interface EntrySpec {
  user: string;
  fqdn: string;
  service: string;
}

/** An entry spec whose host part may be a pattern. */
export interface SpecPattern {
  user: string;
  host: HostPattern;
  service: string;
}

/** A host pattern: the full FQDN glob, and whether it holds a wildcard at all. */
export interface HostPattern {
  glob: string;
  wild: boolean;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const WILD_LABEL = /^[a-z0-9*?]([a-z0-9*?-]{0,61}[a-z0-9*?])?$/;
const USER = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
const SERVICE = /^[a-z0-9][a-z0-9_.-]{0,31}$/;

function bad(what: string, input: string, why: string): PasstoreError {
  return new PasstoreError('bad-name', `bad ${what} '${printable(input)}': ${why}`);
}

/** Renders outside input for a message: control characters escaped, length capped (60 by default). */
export function printable(input: string, max = 60): string {
  const shown = input.length > max ? `${input.slice(0, max - 3)}...` : input;
  return terminalSafe(shown);
}

/**
 * Control characters, C1 controls (U+009B is a one-byte CSI), and the invisible
 * characters that reorder or hide text (bidi overrides and isolates, zero-width marks,
 * line and paragraph separators, byte-order mark).
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * Makes text safe for the terminal, a log or a mail: every character of UNSAFE becomes a
 * visible escape (`\x1b`, `\u009b`, `\u202e`), except newline and tab when
 * `lines` allows them. `own` is the program's own escape introducer (its colours, see
 * Terminal.paint): only that exact sequence becomes a real ESC; any ESC in the text
 * does not. The output layer calls this on everything it writes, so no caller can forget.
 */
export function terminalSafe(text: string, options: { lines?: boolean; own?: string } = {}): string {
  const escape = (part: string) =>
    part.replace(UNSAFE, (c) => {
      if (options.lines && (c === '\n' || c === '\t')) return c;
      const code = c.charCodeAt(0);
      return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    });
  if (!options.own) return escape(text);
  return text.split(options.own).map(escape).join('\x1b');
}

/** Checks a DNS name (RFC 1123 labels, lowercase, at most 253 characters). */
export function isFqdn(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  return labels.length >= 2 && labels.every((l) => LABEL.test(l));
}

/**
 * Parses a host name: lowercased, validated; a short name (no dot) gets `domain`.
 * @throws PasstoreError('bad-name') naming what is wrong.
 */
export function parseHost(input: string, domain: string | undefined): string {
  const what = 'host name';
  if (input.length === 0) throw bad(what, input, 'empty');
  if (input.length > MAX_INPUT) throw bad(what, input, 'too long');
  const lower = input.toLowerCase();
  const fqdn = qualify(lower, domain, what, input);
  const why = hostNameProblem(fqdn);
  if (why) throw bad(what, input, why);
  return fqdn;
}

/**
 * Why a fully qualified host name is not valid (RFC 1123 labels, lowercase, at most 253
 * characters), or undefined. The one check for typed names and for names read back from
 * the store.
 */
export function hostNameProblem(fqdn: string): string | undefined {
  if (fqdn.length > 253) return 'longer than 253 characters';
  if (!fqdn.includes('.')) return 'not a fully qualified name';
  for (const label of fqdn.split('.')) {
    if (label.length === 0) return 'empty label';
    if (label.length > 63) return `label '${printable(label)}' longer than 63 characters`;
    if (!LABEL.test(label)) return `label '${printable(label)}' may hold only letters, digits and inner hyphens`;
  }
  return undefined;
}

/**
 * A host name, user or service read from the store, checked as strictly as a typed one
 * (the same checks as parseHost and parseSpec): a row that would not parse was not written
 * by passtore, and is refused before its name reaches a path, a command or the screen.
 * @throws PasstoreError('integrity') naming the field and the bad value (escaped).
 */
export function storedName(kind: 'host' | 'user' | 'service', value: unknown): string {
  const text = String(value);
  const why = kind === 'host' ? hostNameProblem(text) : (kind === 'user' ? USER : SERVICE).test(text) ? undefined : `not a valid ${kind} name`;
  if (why) throw new PasstoreError('integrity', `the store holds a ${kind} '${printable(text)}' that passtore would never write (${why}); the row is refused`);
  return text;
}

function qualify(lower: string, domain: string | undefined, what: string, input: string): string {
  if (lower.includes('.')) return lower;
  if (!domain) throw bad(what, input, 'short name, and no domain is configured: give the full name, or set domain in the configuration file (passtore.conf(5))');
  return `${lower}.${domain}`;
}

/**
 * Parses a host pattern (`ui-*`, `wn-0?`, `*.example.org`). A pattern with no dot gets
 * the domain, like a short name; the lone `*` matches every host in every domain.
 */
export function parseHostPattern(input: string, domain: string | undefined): HostPattern {
  const what = 'host pattern';
  if (input.length === 0) throw bad(what, input, 'empty');
  if (input.length > MAX_INPUT) throw bad(what, input, 'too long');
  const lower = input.toLowerCase();
  if (!/[*?]/.test(lower)) return { glob: parseHost(input, domain), wild: false };
  if (lower === '*') return { glob: '*', wild: true };
  const glob = qualify(lower, domain, what, input);
  if (glob.length > 253) throw bad(what, input, 'longer than 253 characters');
  for (const label of glob.split('.')) {
    if (label.length === 0) throw bad(what, input, 'empty label');
    if (!WILD_LABEL.test(label)) {
      throw bad(what, input, `label '${printable(label)}' may hold only letters, digits, inner hyphens, * and ?`);
    }
  }
  return { glob, wild: true };
}

function splitSpec(input: string, what: string): { user?: string; host: string; service?: string } {
  if (input.length === 0) throw bad(what, input, 'empty');
  if (input.length > MAX_INPUT) throw bad(what, input, 'too long');
  let rest = input;
  let user: string | undefined;
  let service: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!USER.test(user)) throw bad(what, input, `user '${printable(user)}' is not a valid user name`);
  }
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    service = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!SERVICE.test(service)) throw bad(what, input, `service '${printable(service)}' is not a valid service name`);
  }
  if (rest.length === 0) throw bad(what, input, 'no host');
  return { user, host: rest, service };
}

/** Parses one exact entry spec `[user@]host[:service]`; a wildcard is refused. */
export function parseSpec(input: string, domain: string | undefined): EntrySpec {
  const parts = splitSpec(input, 'entry');
  if (/[*?]/.test(parts.host)) {
    throw bad('entry', input, 'takes one exact host, not a pattern');
  }
  return {
    user: parts.user ?? DEFAULT_USER,
    fqdn: parseHost(parts.host, domain),
    service: parts.service ?? DEFAULT_SERVICE,
  };
}

/** Parses an entry spec whose host may be a pattern (`root@ui-*:ssh`). */
export function parseSpecPattern(input: string, domain: string | undefined): SpecPattern {
  const parts = splitSpec(input, 'entry');
  return {
    user: parts.user ?? DEFAULT_USER,
    host: parseHostPattern(parts.host, domain),
    service: parts.service ?? DEFAULT_SERVICE,
  };
}

/** Formats an entry as `user@fqdn:service`. */
export function formatSpec(spec: EntrySpec): string {
  return `${spec.user}@${spec.fqdn}:${spec.service}`;
}

/** Turns a glob (already validated) into an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let src = '';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[.+^${}()|[\]\\-]/g, '\\$&');
  }
  return new RegExp(`^${src}$`);
}

/** The escape character of every LIKE pattern passtore builds (`LIKE ? ESCAPE '!'`). */
export const LIKE_ESCAPE = '!';

/**
 * Turns a glob into an SQL LIKE pattern escaped with `!`: `%`, `_` and `!` in the input
 * are escaped, so a wildcard never reaches SQL except as `%` or `_`.
 */
export function globToLike(glob: string): string {
  let out = '';
  for (const ch of glob) {
    if (ch === '*') out += '%';
    else if (ch === '?') out += '_';
    else if (ch === '%' || ch === '_' || ch === LIKE_ESCAPE) out += `${LIKE_ESCAPE}${ch}`;
    else out += ch;
  }
  return out;
}

/** The literal text before a glob's first wildcard, for an indexed range scan. */
export function globPrefix(glob: string): string {
  const i = glob.search(/[*?]/);
  return i < 0 ? glob : glob.slice(0, i);
}

/** Shows an FQDN as the operator would type it: short inside the configured domain. */
export function shortName(fqdn: string, domain: string | undefined): string {
  return domain && fqdn.endsWith(`.${domain}`) ? fqdn.slice(0, -domain.length - 1) : fqdn;
}

/** Validates an operator name (a login-like name, used in key slots and the audit trail). */
export function parseOperatorName(input: string): string {
  if (!/^[a-z_][a-z0-9_.-]{0,31}$/.test(input)) {
    throw bad('operator name', input, 'use a lowercase login-like name (letters, digits, _ . -), at most 32 characters');
  }
  return input;
}

/** A file on another machine: `user@host:path`. */
export interface RemoteFile {
  user: string;
  /** A host name (qualified like any other) or an IP address. */
  host: string;
  path: string;
}

const REMOTE_PATH = /^[A-Za-z0-9._\/~+@%=,-]+$/;

/** Whether an argument names a remote file (`user@host:…`) rather than a local path. */
export function isRemoteFile(input: string): boolean {
  return /^[^/@:]+@[^/@:]+:/.test(input);
}

/**
 * Parses `user@host:path` (path may be empty: the login directory). Paths with `..`,
 * control or shell characters are refused, although they would be quoted anyway.
 */
export function parseRemoteFile(input: string, domain: string | undefined, options: { pathRequired?: boolean } = {}): RemoteFile {
  const m = /^([^@]+)@([^:]+):(.*)$/.exec(input);
  if (!m) throw bad('remote file', input, 'expected user@host:path');
  const [, user, hostPart, path] = m as unknown as [string, string, string, string];
  if (!USER.test(user)) throw bad('remote file', input, `user '${printable(user)}' is not a valid user name`);
  const host = /^\d{1,3}(\.\d{1,3}){3}$/.test(hostPart) ? hostPart : parseHost(hostPart, domain);
  if (options.pathRequired && path.length === 0) throw bad('remote file', input, 'no path after the colon');
  if (path.length > 0) {
    if (path.length > 1024) throw bad('remote file', input, 'path too long');
    if (!REMOTE_PATH.test(path)) throw bad('remote file', input, 'the path may hold only letters, digits and . _ / ~ + @ % = , -');
    if (path.split('/').includes('..')) throw bad('remote file', input, 'the path may not hold ..');
  }
  return { user, host, path };
}
