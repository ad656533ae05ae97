/**
 * Distinguished names, read from their DER and shown one way everywhere: RFC 4514 text
 * (most specific attribute first, `,` between RDNs, `+` inside a multi-valued one, and
 * `\` before each character that would change the reading), so that a `/` or `,` inside
 * a value (`O=Site\, Inc/Grid`, a Globus `CN=host/ui.example.org`) reads as what it is.
 * The DER is the truth: nothing here re-parses a printed name.
 */
import { X509Certificate } from 'node:crypto';
import { isFqdn } from '../names.js';
import { children, contentOf, tlv, whole, type Tlv } from './der.js';

/** One attribute of a name, in encoded order. */
export interface NameAttribute {
  /** Short name (CN, O, DC, …) or the dotted OID when it has none. */
  type: string;
  oid: string;
  /** The value as text; undefined for a value that is not a string type (shown as #hex). */
  value: string | undefined;
  /** The value's DER (tag and length included). */
  der: Buffer;
  /** Index of the RDN it belongs to. */
  rdn: number;
}

const SHORT: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'street',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'title',
  '2.5.4.15': 'businessCategory',
  '2.5.4.17': 'postalCode',
  '2.5.4.45': 'x500UniqueIdentifier',
  '2.5.4.42': 'GN',
  '2.5.4.43': 'initials',
  '2.5.4.44': 'generationQualifier',
  '2.5.4.46': 'dnQualifier',
  '2.5.4.65': 'pseudonym',
  '2.5.4.97': 'organizationIdentifier',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '1.3.6.1.4.1.311.60.2.1.1': 'jurisdictionL',
  '1.3.6.1.4.1.311.60.2.1.2': 'jurisdictionST',
  '1.3.6.1.4.1.311.60.2.1.3': 'jurisdictionC',
  '1.2.643.3.131.1.1': 'INN',
  '1.2.643.100.1': 'OGRN',
};

/** Dotted text of an OID's content octets. */
export function oidText(content: Buffer): string {
  if (content.length === 0) throw new Error('empty OID');
  const parts: number[] = [];
  let v = 0;
  for (const b of content) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift()!;
  const a = first < 80 ? Math.floor(first / 40) : 2;
  return [a, first - a * 40, ...parts].join('.');
}

/** The text of a string-typed value, or undefined when the tag is not a string type. */
function stringValue(der: Buffer, t: Tlv): string | undefined {
  const c = contentOf(der, t);
  switch (t.tag) {
    case 0x0c: // UTF8String
      return c.toString('utf8');
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x12: // NumericString
    case 0x1a: // VisibleString
      return c.toString('latin1');
    case 0x14: // TeletexString: in practice Latin-1
      return c.toString('latin1');
    case 0x1e: {
      // BMPString: UTF-16 big-endian
      const swapped = Buffer.from(c);
      if (swapped.length % 2) return undefined;
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    case 0x1c: {
      // UniversalString: UTF-32 big-endian
      if (c.length % 4) return undefined;
      let s = '';
      for (let i = 0; i < c.length; i += 4) s += String.fromCodePoint(c.readUInt32BE(i));
      return s;
    }
    default:
      return undefined;
  }
}

/** The attributes of a DER Name (SEQUENCE OF SET OF SEQUENCE { OID, value }). */
export function nameAttributes(der: Buffer): NameAttribute[] {
  const out: NameAttribute[] = [];
  const top = whole(der);
  if (top.tag !== 0x30) throw new Error('a Name is a SEQUENCE');
  children(der, top).forEach((set, rdn) => {
    if (set.tag !== 0x31) throw new Error('an RDN is a SET');
    for (const atv of children(der, set)) {
      const [oid, value, ...more] = children(der, atv);
      if (atv.tag !== 0x30 || !oid || oid.tag !== 0x06 || !value || more.length) throw new Error('bad AttributeTypeAndValue');
      const dotted = oidText(contentOf(der, oid));
      out.push({ type: SHORT[dotted] ?? dotted, oid: dotted, value: stringValue(der, value), der: der.subarray(value.at, value.end), rdn });
    }
  });
  return out;
}

/** Escapes one attribute value as RFC 4514 section 2.4 asks. */
export function escapeValue(value: string): string {
  let s = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    const code = ch.charCodeAt(0);
    if ('"+,;<>\\'.includes(ch) || (i === 0 && (ch === '#' || ch === ' ')) || (i === value.length - 1 && ch === ' ')) s += `\\${ch}`;
    else if (code < 0x20 || code === 0x7f) s += `\\${code.toString(16).padStart(2, '0').toUpperCase()}`;
    else s += ch;
  }
  return s;
}

/** RFC 4514 text of a DER Name: most specific first; an empty name is the empty string. */
export function rfc4514(der: Buffer): string {
  const rdns: string[][] = [];
  for (const a of nameAttributes(der)) {
    const text = a.value === undefined ? `${a.type}=#${a.der.toString('hex').toUpperCase()}` : `${a.type}=${escapeValue(a.value)}`;
    (rdns[a.rdn] ??= []).push(text);
  }
  return rdns
    .filter(Boolean)
    .map((r) => r.join('+'))
    .reverse()
    .join(',');
}

/** The issuer and subject Names of a certificate, as DER (views into `raw`). */
export function certificateNames(raw: Buffer): { issuer: Buffer; subject: Buffer } {
  const tbs = tlv(raw, tlv(raw, 0).start);
  let at = tbs.start;
  if (raw[at] === 0xa0) at = tlv(raw, at).end; // [0] version
  at = tlv(raw, at).end; // serial
  at = tlv(raw, at).end; // signature algorithm
  const issuer = tlv(raw, at);
  at = tlv(raw, issuer.end).end; // validity
  const subject = tlv(raw, at);
  return { issuer: raw.subarray(issuer.at, issuer.end), subject: raw.subarray(subject.at, subject.end) };
}

/** A certificate's subject and issuer in RFC 4514 text. */
export function certificateDns(cert: X509Certificate): { subject: string; issuer: string } {
  const { issuer, subject } = certificateNames(cert.raw);
  return { subject: rfc4514(subject), issuer: rfc4514(issuer) };
}

/**
 * The host a common name stands for: a plain FQDN, or the Globus `host/FQDN` form still
 * used on IGTF host certificates (lower case); undefined for anything else.
 */
export function hostOfCommonName(cn: string): string | undefined {
  const name = (cn.startsWith('host/') ? cn.slice(5) : cn).toLowerCase();
  return isFqdn(name) ? name : undefined;
}

/** The common names of a certificate's subject, wherever they stand, most specific first. */
export function commonNames(cert: X509Certificate): string[] {
  return nameAttributes(certificateNames(cert.raw).subject)
    .filter((a) => a.type === 'CN' && a.value !== undefined)
    .map((a) => a.value!)
    .reverse();
}
