/**
 * The outside world of passtore-cron in the cron tests: an SMTP receiver (smtp-server,
 * STARTTLS disabled) that parses each message (mailparser) and records it, and an HTTPS
 * server that plays the CA's download point (`GET /certs/NAME` answers the file NAME of a
 * directory, 404 when there is none).
 *
 * Used two ways: imported, in the test process (loopback tests); or run as a program
 * inside a network namespace of the test site, where the cron process reaches it through
 * the network guard:
 *
 *   node servers.js --listen ADDR [--smtp-port N [--smtp-accept K]] [--https-port N
 *        --tls-key FILE --tls-cert FILE --www DIR]
 *
 * The program prints one JSON line per event on stdout ({"event":"ready"}, {"event":"mail",
 * …}, {"event":"http", …}) and stops on SIGTERM. A message's line is written before the
 * server answers 250, so a sender that saw its message accepted finds it recorded.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  messageId: string;
  from: string;
  to: string;
  subject: string;
  text: string;
  attachments: Array<{ filename: string; content: string }>;
}

export interface SmtpOptions {
  host: string;
  port?: number;
  /** Accept this many messages, then answer 451 to every further DATA (default: all). */
  accept?: number;
  onMail(mail: ReceivedMail): void;
}

export interface RunningSmtp {
  port: number;
  close(): Promise<void>;
}

/** Starts an SMTP receiver; resolves once it listens. */
export async function startSmtp(options: SmtpOptions): Promise<RunningSmtp> {
  let accepted = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    banner: 'passtore cron test receiver',
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((m) => {
          if (options.accept !== undefined && accepted >= options.accept) {
            const err = Object.assign(new Error('4.3.0 try again later (test receiver)'), { responseCode: 451 });
            callback(err);
            return;
          }
          accepted++;
          const to = Array.isArray(m.to) ? m.to.map((a) => a.text).join(', ') : (m.to?.text ?? '');
          options.onMail({
            messageId: m.messageId ?? '',
            from: m.from?.text ?? '',
            to,
            subject: m.subject ?? '',
            text: m.text ?? '',
            attachments: m.attachments.map((a) => ({ filename: a.filename ?? '', content: a.content.toString('utf8') })),
          });
          callback();
        })
        .catch((e: Error) => callback(e));
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, options.host, () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface HttpsOptions {
  host: string;
  port?: number;
  key: string;
  cert: string;
  /** The directory `GET /certs/NAME` serves NAME from. */
  www: string;
  onRequest?(path: string, status: number): void;
}

export interface RunningHttps {
  port: number;
  close(): Promise<void>;
}

/** Starts the CA's HTTPS download point; resolves once it listens. */
export async function startHttps(options: HttpsOptions): Promise<RunningHttps> {
  const server: HttpsServer = createServer({ key: readFileSync(options.key), cert: readFileSync(options.cert) }, (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'https://x').pathname);
    let status = 404;
    let body: Buffer | string = 'not issued yet\n';
    const m = /^\/certs\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && m && basename(m[1]!) === m[1]) {
      try {
        body = readFileSync(join(options.www, m[1]!));
        status = 200;
      } catch {
        /* 404 */
      }
    }
    options.onRequest?.(path, status);
    res.writeHead(status, { 'content-type': status === 200 ? 'application/x-pem-file' : 'text/plain' });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string' },
      'smtp-port': { type: 'string' },
      'smtp-accept': { type: 'string' },
      'https-port': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-cert': { type: 'string' },
      www: { type: 'string' },
    },
  });
  const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);
  const host = values.listen ?? '127.0.0.1';
  const closers: Array<() => Promise<void>> = [];
  if (values['smtp-port']) {
    const smtp = await startSmtp({
      host,
      port: Number(values['smtp-port']),
      accept: values['smtp-accept'] === undefined ? undefined : Number(values['smtp-accept']),
      onMail: (mail) => emit({ event: 'mail', mail }),
    });
    closers.push(smtp.close);
  }
  if (values['https-port']) {
    const https = await startHttps({
      host,
      port: Number(values['https-port']),
      key: values['tls-key']!,
      cert: values['tls-cert']!,
      www: values.www!,
      onRequest: (path, status) => emit({ event: 'http', path, status }),
    });
    closers.push(https.close);
  }
  emit({ event: 'ready' });
  const stop = () => {
    Promise.all(closers.map((c) => c())).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: Error) => {
    process.stdout.write(`${JSON.stringify({ event: 'error', message: e.message })}\n`);
    process.exit(1);
  });
}
