/**
 * Cleartext connections. SMTP without TLS, `imap://` and `http://` send passwords and
 * certificates where anyone on the path reads or changes them: passtore requires TLS
 * (implicit, or STARTTLS for SMTP) unless the section says `insecure = yes`, and
 * `passtore-cron check` warns while any section allows cleartext.
 */
import type { Config } from './config.js';
import { PasstoreError } from './errors.js';

/** Whether `[section] insecure = yes` allows cleartext for that section. */
export function insecureAllowed(config: Config, section: 'smtp' | 'ca'): boolean {
  return /^(yes|true)$/i.test(config[section].insecure ?? '');
}

/**
 * Refuses a cleartext URL (`http://`, `imap://`) of a `[ca]` key unless `[ca] insecure = yes`.
 * @throws PasstoreError('config') naming the key and the way out.
 */
export function requireTlsUrl(config: Config, key: string, url: string): void {
  const scheme = /^([a-z]+):/i.exec(url)?.[1]?.toLowerCase();
  if ((scheme === 'http' || scheme === 'imap') && !insecureAllowed(config, 'ca')) {
    throw new PasstoreError('config', `[ca] ${key}: ${scheme}:// sends credentials and certificates in clear; use ${scheme}s:// (or set [ca] insecure = yes on a network you trust)`);
  }
}

/** The sections that allow cleartext (for `check`), e.g. `[smtp] insecure = yes`. */
export function cleartextAllowed(config: Config): string[] {
  return (['smtp', 'ca'] as const).filter((s) => insecureAllowed(config, s)).map((s) => `[${s}] insecure = yes`);
}
