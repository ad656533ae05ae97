/**
 * The jobs of `passtore-cron`: renew, fetch (store and deploy), send the outbox, check,
 * verify. Each returns the lines it has to say and the failures (one line each); nothing
 * here prompts or prints a secret. Mail is queued in the database and sent by `send`.
 */
import { step } from '../faults.js';
import { dataDir } from '../config.js';
import { formatError, PasstoreError } from '../errors.js';
import { printable } from '../names.js';
import type { Fetcher, Outcome } from '../fetchers/fetcher.js';
import { deployHost } from '../remote/deploy.js';
import { driftOf } from '../remote/drift.js';
import { runPool } from '../pool.js';
import type { Session } from '../session.js';
import type { CertRow, Store } from '../storage/store.js';
import type { AuditEvent } from '../vault/audit.js';
import { acceptCertificate } from '../x509/cert-store.js';
import { daysLeft } from '../x509/certificate.js';
import { readObjects } from '../x509/pem.js';
import { makeRequest } from '../x509/renewal.js';

export interface JobReport {
  lines: string[];
  failures: string[];
}

const DAY = 86_400_000;

function deps(session: Session) {
  return {
    config: session.config,
    store: session.store,
    vault: session.vault,
    remote: session.remote,
    operator: session.operator,
    change: <T>(fn: (tx: Store) => Promise<T>) => session.store.transaction(fn),
    audit: (event: AuditEvent, tx?: Store) => session.audit(event, tx),
  };
}

/** The fetchers `[ca]` configures, in a fixed order: dir, http, imap, acme. */
export async function configuredFetchers(session: Session): Promise<Fetcher[]> {
  const ca = session.config.ca;
  const out: Fetcher[] = [];
  // Loaded on demand: the IMAP and ACME libraries are large, and most runs need neither.
  if (ca.dir) out.push(new (await import('../fetchers/dir.js')).DirFetcher(ca.dir));
  if (ca.http_url) out.push(new (await import('../fetchers/http.js')).HttpFetcher(ca.http_url, ca.http_ca_bundle));
  if (ca.imap_url) out.push(new (await import('../fetchers/imap.js')).ImapFetcher(ca.imap_url, ca.imap_password_file, ca.imap_ca_bundle));
  if (ca.acme_directory) {
    const { AcmeFetcher, defaultAccountKeyFile } = await import('../fetchers/acme.js');
    const alg = (ca.acme_eab_alg ?? 'HS256').toUpperCase();
    if (alg !== 'HS256' && alg !== 'HS512') throw new PasstoreError('config', `[ca] acme_eab_alg: expected HS256 or HS512, not '${ca.acme_eab_alg}'`);
    out.push(
      new AcmeFetcher({
        directory: ca.acme_directory,
        eabKid: ca.acme_eab_kid,
        eabHmacFile: ca.acme_eab_hmac_file,
        eabAlg: alg,
        email: ca.acme_email,
        caBundle: ca.acme_ca_bundle,
        accountKeyFile: defaultAccountKeyFile(dataDir()),
      }),
    );
  }
  return out;
}

function requestMailBody(fqdn: string, subject: string, sans: string[], notAfter: string): string {
  return [
    `The host certificate of ${fqdn} expires on ${notAfter.slice(0, 10)}.`,
    '',
    'passtore made a new private key (kept in the vault) and the attached certificate request:',
    `  subject:   ${subject}`,
    `  DNS names: ${sans.join(', ')}`,
    '',
    'What to do: send the attached request to your Registration Authority as your CA asks.',
    'When the certificate is issued, passtore-cron fetch picks it up from where your CA delivers',
    '(the configured [ca] fetchers), stores it only if it matches the new key, deploys it to',
    `${fqdn} and tells you by mail. The current certificate stays in place until then.`,
  ].join('\n');
}

/** Makes new keys and requests for certificates within crt_ttl days of expiry, and staged reminders. */
export async function renew(session: Session, options: { dryRun?: boolean } = {}): Promise<JobReport> {
  const { config, store } = session;
  const report: JobReport = { lines: [], failures: [] };
  const now = Date.now();
  const window = Math.max(config.crtTtl, ...config.notifyDays);
  const soon = await store.expiringCertificates(new Date(now + window * DAY).toISOString());
  const hostsWithOpenRequest = new Set((await store.openRequests('*')).map((r) => r.hostId));
  const acmeOnly = Boolean(config.ca.acme_directory) && !config.ca.dir && !config.ca.http_url && !config.ca.imap_url;
  const canMail = config.adminEmail.length > 0;
  for (const cert of soon) {
    const days = daysLeft(cert.notAfter, now);
    if (days <= config.crtTtl) {
      if (!hostsWithOpenRequest.has(cert.hostId)) {
        if (options.dryRun) report.lines.push(`would renew ${cert.fqdn}: expires ${cert.notAfter.slice(0, 10)} (${days} days)`);
        else {
          try {
            const host = (await store.getHost(cert.fqdn))!;
            // The renewal keeps the certificate's other DNS names and its key's type.
            const extra = cert.sans.split(',').filter((n) => n && n !== cert.fqdn);
            const type = (['rsa-2048', 'rsa-4096', 'ec-p256'] as const).find((t) => t === cert.keyType) ?? config.keyType;
            if (!acmeOnly && !canMail) report.failures.push(`renew ${cert.fqdn}: admin_email is not set; the request cannot be mailed`);
            // The request mail is queued in the request's own transaction: no request without its mail.
            const made = await makeRequest(deps(session), host, type, extra, 'renew', async (tx, r) => {
              if (acmeOnly || !canMail) return;
              await tx.queueMail({ dedupeKey: `request:${r.requestId}`, recipients: config.adminEmail, subject: `passtore: certificate request for ${cert.fqdn}`, body: requestMailBody(cert.fqdn, r.subject, r.sans, cert.notAfter), attachments: [{ filename: `${cert.fqdn}.req`, content: r.pem }] });
            });
            report.lines.push(`renew ${cert.fqdn}: new ${made.keyType} key and request (expires ${cert.notAfter.slice(0, 10)}, ${days} days)`);
          } catch (e) {
            report.failures.push(`renew ${cert.fqdn}: ${formatError(e).replace(/^error: /, '')}`);
          }
        }
      }
    }
    const crossed = config.notifyDays.filter((d) => days <= d);
    if (crossed.length > 0 && canMail) {
      const threshold = Math.min(...crossed);
      if (options.dryRun) report.lines.push(`would remind: ${cert.fqdn} expires in ${days} days (threshold ${threshold})`);
      else if (await store.queueMail({ dedupeKey: `reminder:${cert.id}:${threshold}`, recipients: config.adminEmail, subject: `passtore: the certificate of ${cert.fqdn} expires in ${Math.max(days, 0)} days`, body: reminderBody(cert, days), attachments: [] })) {
        report.lines.push(`reminder queued: ${cert.fqdn} expires in ${days} days`);
      }
    }
  }
  if (soon.length === 0) report.lines.push('renew: no certificate expires soon');
  return report;
}

function reminderBody(cert: CertRow, days: number): string {
  return [
    `The certificate of ${cert.fqdn} (serial ${cert.serial}) expires on ${cert.notAfter.slice(0, 10)}, in ${days} days.`,
    'A new request was mailed when it came within crt_ttl days; this reminder repeats at each',
    'notify_days threshold until a new certificate is stored.',
  ].join('\n');
}

/** Picks up issued certificates, stores the ones that match a pending key, deploys, mails. */
export async function fetch(session: Session): Promise<JobReport> {
  const { config, store } = session;
  const report: JobReport = { lines: [], failures: [] };
  const pending = await store.openRequests('*');
  if (pending.length === 0) {
    report.lines.push('fetch: no open request');
    await redeploy(session, report);
    return report;
  }
  const fetchers = await configuredFetchers(session);
  if (fetchers.length === 0) {
    report.lines.push(`fetch: ${pending.length} open requests, and no [ca] fetcher configured`);
    await redeploy(session, report);
    return report;
  }
  const stored: Stored[] = [];
  const mail = (key: string | null, subject: string, body: string, attachments: Array<{ filename: string; content: string }> = []) =>
    config.adminEmail.length ? store.queueMail({ dedupeKey: key, recipients: config.adminEmail, subject, body, attachments }) : Promise.resolve(false);
  for (const fetcher of fetchers) {
    const ctx = { config, guard: session.guard, problem: (text: string) => report.failures.push(`fetch ${fetcher.name}: ${fetcher.name} fetcher: ${printable(text, 300)}`) };
    let deliveries;
    try {
      deliveries = await fetcher.collect(pending, ctx);
    } catch (e) {
      const why = formatError(e).replace(/^error: /, '');
      report.failures.push(`fetch ${fetcher.name}: ${why}`);
      await mail(`fetcher-failed:${fetcher.name}:${new Date().toISOString().slice(0, 10)}`, `passtore: WARNING: the ${fetcher.name} fetcher failed`, `${why}\n\n(One such warning a day per fetcher.)`);
      continue;
    }
    for (const d of deliveries) {
      // A file name, URL or mail subject is outside input: one line in every report and mail.
      const source = printable(d.source, 300);
      const outcome = await storeDelivery(session, source, d.data, report, mail, stored);
      await d.settle(outcome).catch((e) => report.failures.push(`fetch ${fetcher.name}: ${source}: ${formatError(e).replace(/^error: /, '')}`));
    }
    await fetcher.finish?.(ctx).catch((e) => report.failures.push(`fetch ${fetcher.name}: ${formatError(e).replace(/^error: /, '')}`));
  }
  await deployStored(session, stored, report, mail);
  await redeploy(session, report);
  return report;
}

/** Deploys again the certificates an earlier run stored but could not deploy. */
async function redeploy(session: Session, report: JobReport): Promise<void> {
  // Certificates stored since the host's last deploy: those passtore-cron stored (the
  // request was made by passtore, so the operators expect it deployed), not yet deployed.
  const waiting = (await session.store.currentCertificates('*')).filter(
    (c) => c.deployedAt === null && c.storedBy === session.cronActor && !report.lines.some((l) => l.startsWith(`stored the certificate for ${c.fqdn} `)) && !report.failures.some((l) => l.startsWith(`deploy ${c.fqdn}:`)),
  );
  for (const c of waiting) {
    const host = await session.store.getHost(c.fqdn);
    if (!host) continue;
    try {
      const result = await deployHost(deps(session), host);
      report.lines.push(`${c.fqdn}: ${result} (retried)`);
      if (session.config.adminEmail.length) {
        await session.store.queueMail({ dedupeKey: null, recipients: session.config.adminEmail, subject: `passtore: certificate for ${c.fqdn} deployed (retried)`, body: `The certificate of ${c.fqdn} (serial ${c.serial}), stored by an earlier run that could not deploy it, was ${result}.`, attachments: [] });
      }
    } catch (e) {
      report.failures.push(`deploy ${c.fqdn} (retried): ${formatError(e).replace(/^error: /, '')}`);
    }
  }
}

type Mailer = (key: string | null, subject: string, body: string, attachments?: Array<{ filename: string; content: string }>) => Promise<boolean>;

async function storeDelivery(session: Session, source: string, data: Buffer, report: JobReport, mail: Mailer, stored: Stored[]): Promise<Outcome> {
  const { store } = session;
  const { objects, problems } = readObjects(data);
  const certs = objects.flatMap((o) => (o.kind === 'certificate' && !o.cert.ca ? [o] : []));
  if (certs.length === 0) {
    if (problems.length === 0 || data.length === 0) return 'ignored';
    report.failures.push(`refused: ${source}: ${problems[0]}`);
    return 'refused';
  }
  let outcome: Outcome = 'ignored';
  for (const c of certs) {
    const key = await store.getKeyBySpki(c.facts.spkiSha256);
    if (await store.getCertificateByFingerprint(c.facts.fingerprintSha256)) continue;
    let refusal: string | undefined;
    if (!key) refusal = `certificate ${c.facts.subject} from ${source} matches no key in the vault`;
    else if (key.state !== 'pending') refusal = `certificate ${c.facts.subject} from ${source} is for a key of ${key.fqdn} that waits for no certificate`;
    let fqdn = key?.fqdn;
    if (!refusal) {
      try {
        const accepted = await session.store.transaction(async (tx) => {
          const a = await acceptCertificate(tx, session.vault, c.cert, c.facts, { by: session.cronActor });
          await session.audit({ action: 'fetch', target: a.fqdn, outcome: 'ok', detail: source.slice(0, 200) }, tx);
          return a;
        });
        fqdn = accepted.fqdn;
      } catch (e) {
        refusal = `${source}: ${formatError(e).replace(/^error: /, '')}`;
      }
    }
    if (refusal) {
      outcome = 'refused';
      report.failures.push(`refused: ${refusal}`);
      await session.audit({ action: 'fetch', target: key?.fqdn ?? 'unknown', outcome: 'refused', detail: refusal.slice(0, 300) }).catch(() => undefined);
      await mail(`refused:${c.facts.fingerprintSha256}`, `passtore: WARNING: a certificate was refused`, `${refusal}\n\nNothing was stored. The certificate is attached for reference.`, [{ filename: 'refused.pem', content: c.facts.pem }]);
      continue;
    }
    if (outcome !== 'refused') outcome = 'stored';
    report.lines.push(`stored the certificate for ${fqdn} from ${source} (not after ${c.facts.notAfter.slice(0, 10)})`);
    stored.push({ fqdn: fqdn!, source, serial: c.facts.serial, notAfter: c.facts.notAfter, pem: c.facts.pem });
  }
  return outcome;
}

interface Stored {
  fqdn: string;
  source: string;
  serial: string;
  notAfter: string;
  pem: string;
}

/** Deploys what fetch stored, several hosts at once (as putcrt does), and mails each result. */
async function deployStored(session: Session, stored: Stored[], report: JobReport, mail: Mailer): Promise<void> {
  const results = await runPool(stored, 8, async (s) => deployHost(deps(session), (await session.store.getHost(s.fqdn))!));
  for (const r of results) {
    const s = r.item;
    if (r.ok) {
      report.lines.push(`${s.fqdn}: ${r.value}`);
      await mail(null, `passtore: new certificate for ${s.fqdn} stored and deployed`, `The certificate of ${s.fqdn} (serial ${s.serial}, not after ${s.notAfter.slice(0, 10)}) from ${s.source} matched its key, was stored, and was ${r.value}.`, [{ filename: `${s.fqdn}.pem`, content: s.pem }]);
    } else {
      const why = formatError(r.error).replace(/^error: /, '');
      report.failures.push(`deploy ${s.fqdn}: ${why}`);
      await mail(null, `passtore: WARNING: certificate for ${s.fqdn} stored but not deployed`, `The certificate of ${s.fqdn} from ${s.source} was stored, but deploying it failed: ${why}\nThe next passtore-cron run tries again; or run putcrt ${s.fqdn} once the host is reachable.`);
    }
  }
}

/** Sends the outbox. */
export async function send(session: Session): Promise<JobReport> {
  const report: JobReport = { lines: [], failures: [] };
  try {
    const { sendOutbox } = await import('../mail/mailer.js');
    const r = await sendOutbox(session.config, session.store, session.guard);
    if (r.sent) report.lines.push(`mail: ${r.sent} sent`);
    report.failures.push(...r.failed);
  } catch (e) {
    const queued = await session.store.countQueuedMail();
    report.failures.push(`mail: ${formatError(e).replace(/^error: /, '')} (${queued} stay queued)`);
  }
  return report;
}

/** renew, fetch (store and deploy), then send what is queued. */
export async function run(session: Session): Promise<JobReport> {
  const reconciled: JobReport = { lines: [], failures: [] };
  for (const line of await session.reconcile()) (line.resolved ? reconciled.lines : reconciled.failures).push(`reconcile ${line.text}`);
  const renewed = await renew(session);
  step('cron-renewed');
  const fetched = await fetch(session);
  step('cron-fetched');
  const parts = [reconciled, renewed, fetched, await send(session)];
  return { lines: parts.flatMap((p) => p.lines), failures: parts.flatMap((p) => p.failures) };
}

/** Confirms each host's stored root password on the host (a login, else its shadow entry) and reports where vault and host disagree. */
export async function verify(session: Session): Promise<JobReport> {
  const report: JobReport = { lines: [], failures: [] };
  const entries = (await session.store.findEntries('*', 'root', 'ssh')).filter((e) => e.state === 'set');
  for (const e of entries) {
    const host = (await session.store.getHost(e.fqdn))!;
    if (!host.sshHostKey) {
      report.failures.push(`verify ${e.fqdn}: no pinned SSH host key (run host trust)`);
      continue;
    }
    const password = session.vault.openPassword(e);
    try {
      // A fresh root login, or where the host refuses one, its shadow entry over the key login.
      const ok = await session.remote.confirmPassword(host, 'root', password);
      if (ok) report.lines.push(`verify ${e.fqdn}: the host accepts the vault's root password`);
      else report.failures.push(`verify ${e.fqdn}: the host REFUSES the vault's root password`);
    } catch (err) {
      report.failures.push(`verify ${e.fqdn}: ${formatError(err).replace(/^error: /, '')}`);
    } finally {
      password.wipe();
    }
  }
  if (entries.length === 0) report.lines.push('verify: no root password stored');
  // Drift: the files of each deployed host's profiles, read back without changing anything.
  for (const c of (await session.store.currentCertificates('*')).filter((x) => x.deployedAt)) {
    const host = (await session.store.getHost(c.fqdn))!;
    if (!host.sshHostKey) continue;
    try {
      const problems = await driftOf(deps(session), host);
      await session.store.setHostDrift(host.id, problems.length ? problems.join('; ').slice(0, 1000) : null, new Date().toISOString());
      if (problems.length === 0) report.lines.push(`verify ${c.fqdn}: the deployed files match the vault`);
      else {
        report.failures.push(`verify ${c.fqdn}: DRIFT: ${problems.join('; ')}`);
        await session.audit({ action: 'drift', target: c.fqdn, outcome: 'failed', detail: problems.join('; ').slice(0, 200) }).catch(() => undefined);
      }
    } catch (err) {
      report.failures.push(`verify ${c.fqdn}: deployed files not checked: ${formatError(err).replace(/^error: /, '')}`);
    }
  }
  return report;
}

/** The monitoring plugin's answer: Nagios/Icinga status, one line, performance data. */
export async function check(session: Session): Promise<{ status: 0 | 1 | 2 | 3; line: string }> {
  const { store, config } = session;
  const now = Date.now();
  const certs = await store.currentCertificates('*');
  const expired = certs.filter((c) => Date.parse(c.notAfter) <= now);
  const soon = certs.filter((c) => Date.parse(c.notAfter) > now && daysLeft(c.notAfter, now) <= config.crtTtl);
  const open = await store.openRequests('*');
  const queued = await store.countQueuedMail();
  // Drift as the last passtore-cron verify found it (check itself connects nowhere).
  const drifted = (await store.findHosts('*')).filter((h) => h.drift);
  const perf = `certificates=${certs.length} expiring=${soon.length};;;0 expired=${expired.length};;;0 open_requests=${open.length} queued_mail=${queued} drifted=${drifted.length};1;;0`;
  const names = (list: CertRow[]) => list.slice(0, 5).map((c) => c.fqdn).join(', ') + (list.length > 5 ? ', …' : '');
  if (expired.length > 0) return { status: 2, line: `PASSTORE CRITICAL - ${expired.length} expired: ${names(expired)} | ${perf}` };
  if (soon.length > 0) return { status: 1, line: `PASSTORE WARNING - ${soon.length} within ${config.crtTtl} days: ${names(soon)} | ${perf}` };
  if (drifted.length > 0) {
    const hosts = drifted.slice(0, 5).map((h) => h.fqdn).join(', ') + (drifted.length > 5 ? ', …' : '');
    return { status: 1, line: `PASSTORE WARNING - ${drifted.length} host${drifted.length === 1 ? '' : 's'} drifted from the vault: ${hosts} | ${perf}` };
  }
  return { status: 0, line: `PASSTORE OK - ${certs.length} certificates, none within ${config.crtTtl} days | ${perf}` };
}
