/**
 * The `imap` fetcher: a mailbox where the CA's mails arrive (`[ca] imap_url =
 * imap[s]://user@host[:port]/MAILBOX`, password in `imap_password_file`). Every unseen
 * message is parsed (mailparser); any attached or inline PEM certificate is a candidate.
 * Processed messages are marked \Seen afterwards, so they are not read twice.
 */
import { readFileSync } from 'node:fs';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import { PasstoreError } from '../errors.js';
import { readObjects } from '../x509/pem.js';
import { addressOf } from '../remote/remote.js';
import { readPrivateFile, type Delivery, type FetchContext, type Fetcher } from './fetcher.js';

interface ImapTarget {
  secure: boolean;
  user: string;
  host: string;
  port: number;
  mailbox: string;
}

/** Parses `imap[s]://user@host[:port]/MAILBOX`. */
export function parseImapUrl(text: string): ImapTarget {
  const m = /^(imaps?):\/\/([^@/\s]+)@([^/:\s]+)(?::(\d{1,5}))?(?:\/(.*))?$/.exec(text);
  if (!m) throw new PasstoreError('config', `[ca] imap_url: expected imap[s]://user@host[:port]/MAILBOX, not '${text}'`);
  const secure = m[1] === 'imaps';
  return { secure, user: decodeURIComponent(m[2]!), host: m[3]!, port: m[4] ? Number(m[4]) : secure ? 993 : 143, mailbox: m[5] ? decodeURIComponent(m[5]) : 'INBOX' };
}

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * The certificates a mail may hold: what the certificate reader finds in any attachment
 * (PEM, DER, PKCS#7 bundles), PEM blocks in the text and HTML bodies, and DER attachments by their file name (.der, .cer, .crt). The mail is the CA's,
 * or anyone's: nothing found is trusted until it matches a pending key.
 */
export async function certificatesInMail(source: Buffer): Promise<{ subject: string; pems: string[] }> {
  const parsed = await simpleParser(source);
  const pems: string[] = [];
  for (const a of parsed.attachments ?? []) {
    // The reader of importcert and getcrt first: PEM, DER, and the PKCS#7 bundles
    // (.p7b, .p7c) CA portals send; what it cannot read still goes on, to be reported.
    const read = readObjects(a.content).objects.flatMap((o) => (o.kind === 'certificate' ? [o.facts.pem.trim()] : []));
    if (read.length) {
      pems.push(...read);
      continue;
    }
    const text = a.content.toString('latin1');
    const found = text.match(PEM);
    if (found) pems.push(...found);
    else if (/\.(der|cer|crt)$/i.test(a.filename ?? '')) pems.push(`-----BEGIN CERTIFICATE-----\n${a.content.toString('base64')}\n-----END CERTIFICATE-----`);
  }
  pems.push(...(`${parsed.text ?? ''}\n${typeof parsed.html === 'string' ? parsed.html : ''}`.match(PEM) ?? []));
  // The subject is the sender's text (RFC 2047 may encode a newline in it): one line, printable.
  const subject = (parsed.subject ?? '(no subject)').replace(/[\p{Cc}\p{Cf}\u2028\u2029]+/gu, ' ');
  return { subject, pems };
}

/** Larger mails are not read: a CA's mail with a certificate is a few kilobytes. */
const MAX_MAIL = 5 * 1024 * 1024;

export class ImapFetcher implements Fetcher {
  readonly name = 'imap';
  #processed: number[] = [];
  readonly #target: ImapTarget;

  constructor(
    url: string,
    private readonly passwordFile: string | undefined,
    private readonly caBundle: string | undefined,
  ) {
    this.#target = parseImapUrl(url);
  }

  #password(): string {
    if (!this.passwordFile) throw new PasstoreError('config', '[ca] imap_password_file is not set');
    return readPrivateFile(this.passwordFile, 'imap_password_file').replace(/\r?\n$/, '');
  }

  async #with<T>(ctx: FetchContext, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
    const t = this.#target;
    const address = await addressOf(t.host, null);
    return ctx.guard.withAccess({ address, port: t.port }, async () => {
      const client = new ImapFlow({
        host: address,
        port: t.port,
        secure: t.secure,
        auth: { user: t.user, pass: this.#password() },
        logger: false,
        tls: { servername: t.host, ...(this.caBundle ? { ca: readFileSync(this.caBundle) } : {}) },
        ...(t.secure ? {} : { doSTARTTLS: false }),
        connectionTimeout: 20_000,
        greetingTimeout: 20_000,
      } as ConstructorParameters<typeof ImapFlow>[0]);
      // ImapFlow emits 'error' for a connection that fails between commands (a reset
      // after login); unheard, that event would end the process. It is kept and named
      // in the one failure line instead.
      let lost: { code?: string; message?: string } | undefined;
      client.on('error', (e: { code?: string; message?: string }) => {
        lost ??= e;
      });
      const failure = (e: unknown, doing: string) => {
        if (e instanceof PasstoreError) return e;
        const err = (lost ?? e) as { authenticationFailed?: boolean; code?: string; message?: string };
        const why = err.authenticationFailed ? 'authentication failed' : (err.code ?? err.message ?? 'failed');
        return new PasstoreError('io', `imap fetcher: ${t.user}@${t.host}: ${doing}: ${why}`, { cause: e });
      };
      try {
        await client.connect();
      } catch (e) {
        client.close();
        throw failure(e, 'cannot log in');
      }
      try {
        return await fn(client);
      } catch (e) {
        throw failure(e, lost || !client.usable ? 'the connection was lost' : `reading ${t.mailbox}`);
      } finally {
        await client.logout().catch(() => client.close());
      }
    });
  }

  async collect(_pending: unknown, ctx: FetchContext): Promise<Delivery[]> {
    this.#processed = [];
    return this.#with(ctx, async (client) => {
      const lock = await client.getMailboxLock(this.#target.mailbox);
      try {
        const out: Delivery[] = [];
        // A mail too large to be a CA's is not downloaded: reported once, and marked read.
        for (const uid of (await client.search({ seen: false, larger: MAX_MAIL }, { uid: true })) || []) {
          ctx.problem(`mail ${uid} is larger than ${MAX_MAIL / 1024 / 1024} MiB: not read, marked read`);
          this.#processed.push(Number(uid));
        }
        const uids = (await client.search({ seen: false, smaller: MAX_MAIL + 1 }, { uid: true })) || [];
        for (const uid of uids) {
          const msg = await client.fetchOne(String(uid), { source: true }, { uid: true });
          if (!msg || !msg.source) continue;
          const { subject, pems } = await certificatesInMail(msg.source);
          out.push({
            source: `mail ${uid} "${subject.slice(0, 60)}"`,
            data: Buffer.from(pems.join('\n')),
            settle: async () => {
              this.#processed.push(Number(uid));
            },
          });
        }
        return out;
      } finally {
        lock.release();
      }
    });
  }

  /** Marks the processed mails read (those not downloaded for their size included). */
  async finish(ctx: FetchContext): Promise<void> {
    if (this.#processed.length === 0) return;
    const uids = this.#processed.join(',');
    await this.#with(ctx, async (client) => {
      const lock = await client.getMailboxLock(this.#target.mailbox);
      try {
        await client.messageFlagsAdd(uids, ['\\Seen'], { uid: true });
      } finally {
        lock.release();
      }
    });
    this.#processed = [];
  }
}
