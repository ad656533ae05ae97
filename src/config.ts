/**
 * Configuration (SPEC section 10): one INI file, found as `$PASSTORE_CONFIG`, else
 * `~/.config/passtore/passtore.conf`, else `/etc/passtore/passtore.conf`; with none, the
 * defaults. The `ini` package parses; this module validates every key and value and names
 * the file, line and key of anything it refuses. The original tool's `sanctorum.conf`
 * keys are read too.
 */
import { checkTrustedFile } from './trusted-file.js';
import { parseProfile, type DeployProfile } from './remote/profiles.js';
import { readFileSync, existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isIP } from 'node:net';
import { decode } from 'ini';
import { splitWords } from './args.js';
import { PasstoreError } from './errors.js';
import { isFqdn, parseOperatorName } from './names.js';
import { didYouMean } from './suggest.js';
import { isKeyType, KEY_TYPE_LIST, type KeyType } from './policy.js';

export type { KeyType } from './policy.js';

/** The validated configuration every component reads. */
export interface Config {
  /** The file it came from, or undefined for built-in defaults. */
  file: string | undefined;
  domain: string | undefined;
  /** `sqlite:PATH` or `mysql://user@host[:port]/name`. */
  db: string;
  dbPasswordFile: string | undefined;
  operator: string;
  adminEmail: string[];
  crtTtl: number;
  notifyDays: number[];
  crtPath: string;
  dnTemplate: string;
  keyType: KeyType;
  /** Minutes without input before the shell wipes the data key; 0 never. */
  idleLock: number;
  /** Seconds a revealed password stays on screen. */
  revealTimeout: number;
  keyfile: string | undefined;
  /** Seconds a passtore-cron run's lease lasts without being extended (a dead holder's lapses). */
  leaseTime: number;
  /** Seconds a passtore-cron run waits for another run's lease before it gives up (exit 0). */
  leaseWait: number;
  smtp: Record<string, string>;
  network: Record<string, string>;
  ca: Record<string, string>;
  schedule: Record<string, string>;
  /** Deploy profiles from `[profile NAME]` sections (the built-in grid is not here). */
  profiles?: Record<string, DeployProfile>;
}

/** The directory passtore keeps its own files in (vault file, history): mode 0700. */
export function dataDir(): string {
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'passtore');
}

/** The config file passtore would read, or undefined when there is none. */
export function findConfigFile(): string | undefined {
  const env = process.env.PASSTORE_CONFIG;
  if (env) return env;
  const candidates = [
    join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'passtore', 'passtore.conf'),
    '/etc/passtore/passtore.conf',
  ];
  return candidates.find((c) => existsSync(c));
}

function defaultOperator(): string {
  const name = process.env.SUDO_USER || safeUserName();
  try {
    return parseOperatorName(name.toLowerCase());
  } catch {
    return 'operator';
  }
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'operator';
  }
}

/** The defaults: what passtore uses with no config file at all. */
export function defaultConfig(): Config {
  return {
    file: undefined,
    domain: undefined,
    db: `sqlite:${join(dataDir(), 'vault.db')}`,
    dbPasswordFile: undefined,
    operator: defaultOperator(),
    adminEmail: [],
    crtTtl: 30,
    notifyDays: [30, 14, 7, 2],
    crtPath: '/etc/grid-security',
    dnTemplate: '/CN={fqdn}',
    keyType: 'rsa-2048',
    idleLock: 15,
    revealTimeout: 20,
    keyfile: undefined,
    leaseTime: 600,
    leaseWait: 0,
    smtp: {},
    network: {},
    ca: {},
    schedule: {},
  };
}

type Setter = (c: Config, value: string, fail: (why: string) => never) => void;

const int = (min: number, max: number) => (value: string, fail: (why: string) => never): number => {
  if (!/^\d+$/.test(value)) fail(`expected a whole number from ${min} to ${max}`);
  const n = Number(value);
  if (n < min || n > max) fail(`expected a whole number from ${min} to ${max}`);
  return n;
};

const EMAIL = /^[^\s@,;<>"]+@[^\s@,;<>"]+\.[^\s@,;<>"]+$/;

/** Top-level keys: each validates its value into the Config. */
const topLevel: Record<string, Setter> = {
  domain(c, v, fail) {
    const d = v.toLowerCase();
    if (!isFqdn(d)) fail('expected a DNS domain such as example.org');
    c.domain = d;
  },
  db(c, v, fail) {
    if (/^sqlite:.+/.test(v)) c.db = v;
    else if (/^mysql:\/\/[^@/\s:]+@[^/\s:]+(:\d{1,5})?\/[A-Za-z0-9_$]{1,64}(\?socket=\/\S+)?$/.test(v)) c.db = v;
    else fail('expected sqlite:PATH or mysql://user@host[:port]/name');
  },
  db_password_file(c, v, fail) {
    c.dbPasswordFile = anyText.check(v, fail);
  },
  operator(c, v, fail) {
    try {
      c.operator = parseOperatorName(v);
    } catch (e) {
      fail((e as Error).message);
    }
  },
  admin_email(c, v, fail) {
    const list = v.split(',').map((s) => s.trim()).filter(Boolean);
    const badOne = list.find((a) => !EMAIL.test(a));
    if (list.length === 0 || badOne) fail(`expected comma-separated mail addresses${badOne ? `, not '${badOne}'` : ''}`);
    c.adminEmail = list;
  },
  crt_ttl(c, v, fail) {
    c.crtTtl = int(1, 3650)(v, fail);
  },
  notify_days(c, v, fail) {
    const days = v.split(',').map((s) => int(0, 3650)(s.trim(), fail));
    c.notifyDays = [...new Set(days)].sort((a, b) => b - a);
  },
  crt_path(c, v, fail) {
    if (!isAbsolute(v) || v.split('/').includes('..')) fail('expected an absolute path without ..');
    c.crtPath = v.replace(/\/+$/, '') || '/';
  },
  dn_template(c, v, fail) {
    if (!v.includes('{fqdn}') || !/^\/?[A-Za-z][A-Za-z0-9.]*=/.test(v)) fail('expected a subject of ATTRIBUTE=value parts containing {fqdn}, such as /DC=org/O=Site/CN={fqdn}');
    c.dnTemplate = v;
  },
  key_type(c, v, fail) {
    if (!isKeyType(v)) fail(`expected ${KEY_TYPE_LIST}`);
    c.keyType = v as KeyType;
  },
  idle_lock(c, v, fail) {
    c.idleLock = int(0, 1440)(v, fail);
  },
  reveal_timeout(c, v, fail) {
    c.revealTimeout = int(1, 600)(v, fail);
  },
  keyfile(c, v, fail) {
    c.keyfile = anyText.check(v, fail);
  },
  lease_time(c, v, fail) {
    c.leaseTime = int(2, 86_400)(v, fail);
  },
  lease_wait(c, v, fail) {
    c.leaseWait = int(0, 86_400)(v, fail);
  },
};

/** The original tool's keys (sanctorum.conf), read into the same Config. */
const sanctorum: Record<string, Setter> = {
  crt_TTL: (c, v, fail) => topLevel.crt_ttl!(c, v, fail),
  dbuser: () => {},
  dbname: () => {},
};

/**
 * A section key's declared type: what the error says it expected, and the check that
 * returns the value as the rest of passtore reads it (or fails naming what is wrong).
 */
interface KeyType_ {
  expected: string;
  check(value: string, fail: (why: string) => never): string;
}

const anyText: KeyType_ = {
  expected: 'a value',
  check: (v, fail) => (v === '' || /[\u0000-\u001f\u007f]/.test(v) ? fail('expected a value, without control characters') : v),
};
const token: KeyType_ = { expected: 'one word', check: (v, fail) => (/^[^\s\u0000-\u001f\u007f]+$/.test(v) ? v : fail('expected one word, without blanks')) };
const absolutePath: KeyType_ = {
  expected: 'an absolute path',
  check: (v, fail) => (isAbsolute(v) && !/[\u0000-\u001f]/.test(v) ? v : fail(`expected an absolute path, not '${v}'`)),
};
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;
const hostName: KeyType_ = {
  expected: 'a host name or IP address',
  check: (v, fail) => (HOSTNAME.test(v) || isIP(v) ? v : fail(`expected a host name or IP address, not '${v}'`)),
};
const portNumber: KeyType_ = { expected: 'a port number', check: (v, fail) => String(int(1, 65535)(v, (why) => fail(`${why} (a port number)`))) };
const boolean: KeyType_ = {
  expected: 'true or false',
  check: (v, fail) => (/^(true|false)$/i.test(v) ? v.toLowerCase() : fail(`expected true or false, not '${v}'`)),
};
const mailbox: KeyType_ = {
  expected: 'a mail address',
  check: (v, fail) => (EMAIL.test(v) || /^[^<>]*<[^\s@,;<>"]+@[^\s@,;<>"]+\.[^\s@,;<>"]+>$/.test(v) ? v : fail(`expected a mail address (or Name <address>), not '${v}'`)),
};
function url(protocols: string[], template?: string): KeyType_ {
  const shown = protocols.map((p) => `${p}//`).join(' or ');
  return {
    expected: `a ${shown} URL`,
    check: (v, fail) => {
      let u: URL;
      try {
        u = new URL(template ? v.replaceAll(template, 'host.example.org') : v);
      } catch {
        return fail(`expected a ${shown} URL, not '${v}'`);
      }
      if (!protocols.includes(u.protocol)) fail(`expected a ${shown} URL, not '${v}'`);
      return v;
    },
  };
}
const imapUrl: KeyType_ = {
  expected: 'imap[s]://user@host[:port]/MAILBOX',
  check: (v, fail) => {
    const m = /^imaps?:\/\/[^@/\s]+@[^/:\s]+(?::(\d{1,5}))?(?:\/.*)?$/.exec(v);
    if (!m || (m[1] !== undefined && (Number(m[1]) < 1 || Number(m[1]) > 65535))) fail(`expected imap[s]://user@host[:port]/MAILBOX, not '${v}'`);
    return v;
  },
};
/** `yes` or `no` (also true/false), as the rest of passtore reads it: 'yes' or 'no'. */
const yesNo: KeyType_ = {
  expected: 'yes or no',
  check: (v, fail) => (/^(yes|true)$/i.test(v) ? 'yes' : /^(no|false)$/i.test(v) ? 'no' : fail(`expected yes or no, not '${v}'`)),
};
const eabAlgorithm: KeyType_ = {
  expected: 'HS256 or HS512',
  check: (v, fail) => (/^HS(256|512)$/i.test(v) ? v.toUpperCase() : fail(`expected HS256 or HS512, not '${v}'`)),
};
/** A guard command: an argument vector, in which only `{address}` and `{port}` are replaced. */
function guardCommand(): KeyType_ {
  return {
    expected: 'a command',
    check: (v, fail) => {
      if (splitWords(v).length === 0) fail('expected a command');
      for (const [p] of v.matchAll(/\{[^{}\s]*\}/g)) {
        if (p !== '{address}' && p !== '{port}') fail(`unknown placeholder ${p}${didYouMean(p, ['{address}', '{port}'])}; only {address} and {port} are replaced`);
      }
      return v;
    },
  };
}
/** A node-schedule cron expression: 5 fields, or 6 with the seconds first, each in range. */
const cronExpression: KeyType_ = {
  expected: 'a cron expression',
  check: (v, fail) => {
    const fields = v.split(/\s+/);
    const usage = 'expected a cron expression of 5 or 6 fields, such as 17 3 * * *';
    if (fields.length < 5 || fields.length > 6) fail(usage);
    const ranges: Array<[string, number, number]> = [['minute', 0, 59], ['hour', 0, 23], ['day of month', 1, 31], ['month', 1, 12], ['day of week', 0, 7]];
    if (fields.length === 6) ranges.unshift(['second', 0, 59]);
    fields.forEach((f, i) => {
      const [name, min, max] = ranges[i]!;
      for (const part of f.split(',')) {
        const m = /^(\*|\?|[0-9]+|[A-Za-z]{3})(?:-([0-9]+|[A-Za-z]{3}))?(?:\/([0-9]+))?(?:#[1-5]|L)?$/.exec(part);
        if (!m) fail(`${usage}: '${f}' is not a ${name} field`);
        for (const n of [m![1], m![2]]) {
          if (n !== undefined && /^\d+$/.test(n) && (Number(n) < min || Number(n) > max)) fail(`${usage}: ${name} ${n} is out of range ${min}-${max}`);
        }
        if (m![3] !== undefined && Number(m![3]) === 0) fail(`${usage}: a step of 0 in '${f}'`);
      }
    });
    return v;
  },
};

/** Every key of every section, with its declared type: checked when the file is read. */
const sections: Record<string, Record<string, KeyType_>> = {
  smtp: { host: hostName, port: portNumber, secure: boolean, user: anyText, password_file: absolutePath, from: mailbox, insecure: yesNo },
  network: {
    up: guardCommand(),
    down: guardCommand(),
    allow: guardCommand(),
    revoke: guardCommand(),
    check: guardCommand(),
    parallel: yesNo,
    batch: guardCommand(),
    batch_allow: guardCommand(),
    batch_revoke: guardCommand(),
    batch_begin: anyText,
    batch_end: anyText,
  },
  ca: {
    dir: absolutePath,
    http_url: url(['http:', 'https:'], '{fqdn}'),
    http_ca_bundle: absolutePath,
    imap_url: imapUrl,
    imap_password_file: absolutePath,
    imap_ca_bundle: absolutePath,
    acme_directory: url(['https:']),
    acme_eab_kid: token,
    acme_eab_hmac_file: absolutePath,
    acme_eab_alg: eabAlgorithm,
    acme_email: mailbox,
    acme_ca_bundle: absolutePath,
    insecure: yesNo,
    trust: absolutePath,
  },
  schedule: { renew: cronExpression, fetch: cronExpression, run: cronExpression, check: cronExpression, verify: cronExpression },
};

/** Every key a configuration file may hold: the top-level ones, then `[section] key`. */
export function configKeys(): Array<{ section: string | undefined; key: string }> {
  return [...Object.keys(topLevel).map((key) => ({ section: undefined, key })), ...Object.entries(sections).flatMap(([section, keys]) => Object.keys(keys).map((key) => ({ section, key })))];
}

/** Stands for a section's header line in `lineOf`. */
const SECTION_HEADER = '\u0000header';

/** Finds the line a key (or a section's header) stands on in the raw text. */
function lineOf(text: string, section: string | undefined, key: string): number {
  const lines = text.split(/\r?\n/);
  let current: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const head = /^\[([^\]]*)\]/.exec(line);
    if (head) {
      current = head[1]!.trim();
      if (key === SECTION_HEADER && current === section) return i + 1;
      continue;
    }
    if (current !== section) continue;
    const m = /^([^=]+?)\s*(=|$)/.exec(line);
    if (m && m[1] === key) return i + 1;
  }
  return 0;
}

/** A key given twice in a section is refused: `ini` would keep the last one silently. */
function refuseRepeats(file: string, text: string): void {
  const seen = new Map<string, number>();
  let section = '';
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith(';') || line.startsWith('#')) return;
    const head = /^\[([^\]]*)\]/.exec(line);
    if (head) {
      section = head[1]!.trim();
      return;
    }
    const key = /^([^=]+?)\s*(=|$)/.exec(line)?.[1];
    if (!key) return;
    const id = `${section}\u0000${key}`;
    const first = seen.get(id);
    if (first !== undefined) {
      throw new PasstoreError('config', `${file}:${i + 1}: ${section ? `[${section}] ` : ''}${key}: given twice (first on line ${first})`);
    }
    seen.set(id, i + 1);
  });
}

/** The raw text of the line a key stands on. */
function rawLine(text: string, section: string | undefined, key: string): string | undefined {
  const n = lineOf(text, section, key);
  return n ? text.split(/\r?\n/)[n - 1] : undefined;
}

/**
 * Loads and validates a configuration file.
 * @throws PasstoreError('config') naming the file, the line and the key.
 */
export function loadConfig(file: string | undefined = findConfigFile()): Config {
  const config = defaultConfig();
  if (!file) return config;
  // The configuration names commands passtore runs (as root): only root or this user may write it.
  if (existsSync(file)) checkTrustedFile(file, 'configuration');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new PasstoreError('config', `${file}: cannot read the configuration (${code})`);
  }
  config.file = file;
  refuseRepeats(file, text);
  const parsed = decode(text) as Record<string, unknown>;
  const fail = (section: string | undefined, key: string) => (why: string): never => {
    const line = lineOf(text, section, key);
    const where = line ? `${file}:${line}` : file;
    const name = section ? (key === SECTION_HEADER ? `[${section}]` : `[${section}] ${key}`) : key;
    throw new PasstoreError('config', `${where}: ${name}: ${why}`);
  };
  const seen = new Map<string, string>();
  for (const [key, raw] of Object.entries(parsed)) {
    if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && /^profile\s/.test(key)) {
      const name = key.replace(/^profile\s+/, '');
      const body = Object.fromEntries(Object.entries(raw as Record<string, unknown>).map(([k, v]) => {
        if (v !== null && typeof v === 'object') fail(key, k)('nested sections are not supported');
        return [k, valueOf(v, rawLine(text, key, k), fail(key, k))];
      }));
      (config.profiles ??= {})[name] = parseProfile(name, body, (k) => fail(key, k));
      continue;
    }
    if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
      readSection(config, key, raw as Record<string, unknown>, text, (k) => fail(key, k));
      continue;
    }
    const value = valueOf(raw, rawLine(text, undefined, key), fail(undefined, key));
    const setter = topLevel[key] ?? sanctorum[key];
    if (!setter) fail(undefined, key)(`unknown key${didYouMean(key, Object.keys(topLevel))}`);
    setter!(config, value, fail(undefined, key));
    seen.set(key, value);
  }
  applySanctorum(config, seen, file, fail);
  if (config.db.startsWith('sqlite:')) {
    const path = config.db.slice('sqlite:'.length);
    config.db = `sqlite:${resolve(dirname(file), path)}`;
  }
  if (config.dbPasswordFile) config.dbPasswordFile = resolve(dirname(file), config.dbPasswordFile);
  if (config.keyfile) config.keyfile = resolve(dirname(file), config.keyfile);
  return config;
}

function valueOf(raw: unknown, line: string | undefined, fail: (why: string) => never): string {
  // `ini` turns a bare `key` line into true, and the words true/false/null into values of
  // those types: the raw line tells which it was.
  const eq = line?.indexOf('=') ?? -1;
  if (eq < 0) fail('expected key = value');
  const rawValue = line!.slice(eq + 1).trim();
  const value = typeof raw === 'string' ? raw.trim() : raw === null || typeof raw === 'boolean' ? rawValue : fail('expected one value');
  // An unquoted ; or # starts a comment for `ini`: refuse rather than cut a command short.
  if (/[;#]/.test(rawValue) && !/^(["']).*\1$/.test(rawValue) && value !== rawValue) {
    fail('the value holds ; or # (a comment for INI): quote the whole value');
  }
  return value;
}

function readSection(
  config: Config,
  name: string,
  body: Record<string, unknown>,
  text: string,
  fail: (key: string) => (why: string) => never,
): void {
  const keys = sections[name];
  if (!keys) fail(SECTION_HEADER)(`unknown section${didYouMean(name, Object.keys(sections), (n) => `[${n}]`)}`);
  const target = config[name as 'smtp' | 'network' | 'ca' | 'schedule'];
  for (const [key, raw] of Object.entries(body)) {
    if (raw !== null && typeof raw === 'object') fail(key)('nested sections are not supported');
    const type = keys![key];
    if (!type) fail(key)(`unknown key${didYouMean(key, Object.keys(keys!))}`);
    const value = valueOf(raw, rawLine(text, name, key), fail(key));
    if (value === '') fail(key)(`expected ${type!.expected}, not an empty value`);
    target[key] = type!.check(value, fail(key));
  }
}

function applySanctorum(
  config: Config,
  seen: Map<string, string>,
  file: string,
  fail: (section: string | undefined, key: string) => (why: string) => never,
): void {
  const dbuser = seen.get('dbuser');
  const dbname = seen.get('dbname');
  if (!dbuser && !dbname) return;
  if (seen.has('db')) fail(undefined, 'dbuser')('give either db or the old dbuser/dbname keys, not both');
  if (!dbuser || !dbname) fail(undefined, dbuser ? 'dbname' : 'dbuser')('dbuser and dbname go together');
  const url = `mysql://${dbuser}@localhost/${dbname}`;
  topLevel.db!(config, url, fail(undefined, 'dbname'));
  // The original tool kept the database password in `.sanctorum` beside its config.
  if (!config.dbPasswordFile) config.dbPasswordFile = join(dirname(resolve(file)), '.sanctorum');
}
