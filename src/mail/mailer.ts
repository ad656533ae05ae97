/**
 * Sending the outbox through SMTP (nodemailer), behind the network guard. A message is
 * marked sent only after the server accepted it; one that fails stays queued for the next
 * run. Each message carries a Message-ID made from its outbox id, so a receiver can tell a
 * repeat should a crash fall between the server's acceptance and the mark.
 *
 * Each message is claimed (one atomic update) before it is sent, so senders running at
 * once, on one machine or several sharing the database, never send the same message; a
 * claim whose sender died lapses after CLAIM_SECONDS (at once when the sender ran on this
 * system and its process is gone) and the message goes back to the queue. Delivery stays at least once across a crash between the server's answer and the
 * mark, never at most once.
 */
import { insecureAllowed } from '../cleartext.js';
import { checkTrustedFile } from '../trusted-file.js';
import { terminalSafe } from '../names.js';
import { step } from '../faults.js';
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import nodemailer from 'nodemailer';
import type { Config } from '../config.js';
import { PasstoreError } from '../errors.js';
import type { NetworkGuard } from '../guard/guard.js';
import { holderIsDead, holderTag } from '../holder.js';
import { addressOf } from '../remote/remote.js';
import type { Store } from '../storage/store.js';

/** How long a claim holds a message: longer than the SMTP timeouts of one message. */
export const CLAIM_SECONDS = 300;

export interface SendReport {
  sent: number;
  failed: string[];
}

function smtpSettings(config: Config): { host: string; port: number; secure: boolean; user?: string; passwordFile?: string; from: string } {
  const s = config.smtp;
  if (!s.host) throw new PasstoreError('config', '[smtp] host is not set; mail cannot be sent');
  const port = Number(s.port ?? 25);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PasstoreError('config', `[smtp] port: '${s.port}' is not a port number`);
  return { host: s.host, port, secure: s.secure === 'true', user: s.user, passwordFile: s.password_file, from: s.from ?? `passtore@${hostname()}` };
}

/** The SMTP password file: private (no group or other bits) and only root's or ours to write. */
function readSmtpPassword(file: string): string {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (e) {
    throw new PasstoreError('config', `[smtp] password_file ${file}: cannot read it (${(e as NodeJS.ErrnoException).code})`);
  }
  if ((mode & 0o077) !== 0) throw new PasstoreError('config', `[smtp] password_file ${file} (mode 0${(mode & 0o777).toString(8)}) is readable by group or others; chmod 600 it`);
  checkTrustedFile(file, '[smtp] password_file');
  return readFileSync(file, 'utf8').trim();
}

/** Sends every queued message; returns how many went and why the others did not. */
export async function sendOutbox(config: Config, store: Store, guard: NetworkGuard): Promise<SendReport> {
  const queued = await store.queuedMail();
  if (queued.length === 0) return { sent: 0, failed: [] };
  const smtp = smtpSettings(config);
  const password = smtp.passwordFile ? readSmtpPassword(smtp.passwordFile) : undefined;
  const address = await addressOf(smtp.host, null);
  const report: SendReport = { sent: 0, failed: [] };
  await guard.withAccess({ address, port: smtp.port }, async () => {
    const transport = nodemailer.createTransport({
      host: address,
      port: smtp.port,
      secure: smtp.secure,
      // Without implicit TLS, STARTTLS is required: no password or request goes in clear
      // unless [smtp] insecure = yes.
      requireTLS: !smtp.secure && !insecureAllowed(config, 'smtp'),
      name: hostname(),
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 30_000,
      tls: { servername: smtp.host },
      ...(smtp.user ? { auth: { user: smtp.user, pass: password ?? '' } } : {}),
    });
    const claimant = holderTag();
    try {
      let down: string | undefined;
      for (const m of queued) {
        const now = Date.now();
        // Another sender has it (or sent it since the queue was read): not ours to send,
        // unless that sender ran on this system and is dead (then its claim, and only it, is taken).
        const until = new Date(now + CLAIM_SECONDS * 1000).toISOString();
        const dead = holderIsDead(m.claimedBy) ? m.claimedBy! : undefined;
        if (!(await store.claimMail(m.id, claimant, until, new Date(now).toISOString(), dead))) continue;
        step('mail-claimed');
        if (down) {
          // The server is unreachable: the rest stay queued without waiting for each.
          await store.markMailFailed(m.id, down);
          report.failed.push(`mail ${m.id} "${m.subject}" not sent (${down}); it stays queued`);
          continue;
        }
        try {
          await transport.sendMail({
            from: smtp.from,
            to: m.recipients,
            // Outside text in a mail (a host's message, a file name) is shown, never obeyed.
            subject: terminalSafe(m.subject),
            text: terminalSafe(m.body, { lines: true }),
            messageId: `<passtore-outbox-${m.id}-${m.createdAt.replace(/[^0-9]/g, '')}@${hostname()}>`,
            attachments: m.attachments.map((a) => ({ filename: a.filename, content: a.content })),
          });
          step('mail-accepted');
          await store.markMailSent(m.id, new Date().toISOString());
          // A request whose mail went out is marked sent.
          const request = /^request:(\d+)$/.exec(m.dedupeKey ?? '');
          if (request) await store.setRequestState(Number(request[1]), 'sent', new Date().toISOString()).catch(() => undefined);
          report.sent++;
        } catch (e) {
          const err = e as { code?: string; message?: string };
          const why = `${err.code ? `${err.code}: ` : ''}${(err.message ?? 'error').split('\n')[0]}`.slice(0, 160);
          await store.markMailFailed(m.id, why);
          report.failed.push(`mail ${m.id} "${m.subject}" not sent (${why}); it stays queued`);
          if (/^(ECONNECTION|ETIMEDOUT|ESOCKET|EDNS|ECONNREFUSED)$/.test(err.code ?? '')) down = why;
        }
      }
    } finally {
      transport.close();
    }
  });
  return report;
}
