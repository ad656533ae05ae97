/**
 * Sending the outbox through SMTP (nodemailer), behind the network guard. A message is
 * marked sent only after the server accepted it; one that fails stays queued for the next
 * run. Each message carries a Message-ID made from its outbox id, so a receiver can tell a
 * repeat should a crash fall between the server's acceptance and the mark.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import nodemailer from 'nodemailer';
import type { Config } from '../config.js';
import { PasstoreError } from '../errors.js';
import type { NetworkGuard } from '../guard/guard.js';
import { addressOf } from '../remote/remote.js';
import type { Store } from '../storage/store.js';

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

/** Sends every queued message; returns how many went and why the others did not. */
export async function sendOutbox(config: Config, store: Store, guard: NetworkGuard): Promise<SendReport> {
  const queued = await store.queuedMail();
  if (queued.length === 0) return { sent: 0, failed: [] };
  const smtp = smtpSettings(config);
  const password = smtp.passwordFile ? readFileSync(smtp.passwordFile, 'utf8').trim() : undefined;
  const address = await addressOf(smtp.host, null);
  const report: SendReport = { sent: 0, failed: [] };
  await guard.withAccess({ address, port: smtp.port }, async () => {
    const transport = nodemailer.createTransport({
      host: address,
      port: smtp.port,
      secure: smtp.secure,
      name: hostname(),
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 30_000,
      tls: { servername: smtp.host },
      ...(smtp.user ? { auth: { user: smtp.user, pass: password ?? '' } } : {}),
    });
    try {
      for (const m of queued) {
        try {
          await transport.sendMail({
            from: smtp.from,
            to: m.recipients,
            subject: m.subject,
            text: m.body,
            messageId: `<passtore-outbox-${m.id}-${m.createdAt.replace(/[^0-9]/g, '')}@${hostname()}>`,
            attachments: m.attachments.map((a) => ({ filename: a.filename, content: a.content })),
          });
          await store.markMailSent(m.id, new Date().toISOString());
          report.sent++;
        } catch (e) {
          const why = (e as { code?: string; message?: string }).code ?? (e as Error).message ?? 'error';
          await store.markMailFailed(m.id, String(why));
          report.failed.push(`mail ${m.id} "${m.subject}" not sent (${String(why).slice(0, 120)}); it stays queued`);
        }
      }
    } finally {
      transport.close();
    }
  });
  return report;
}
