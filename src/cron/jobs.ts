/**
 * The jobs of `passtore-cron`: renew, fetch (store and deploy), send the outbox, check,
 * verify. Each is a descriptor (name, what it needs, what it audits) run by `main.ts` with
 * the session's one context; each returns the lines it has to say, the failures (one line
 * each) and what it did as data, which later steps decide from (never from report text).
 * Nothing here prompts or prints a secret. Mail is queued in the database and sent by `send`.
 */
import { count } from '../plural.js';
import type { X509Certificate } from 'node:crypto';
import type { CertFacts } from '../x509/certificate.js';
import type { KeyRow } from '../storage/store.js';
import { loadTrust, namesOutside, renewalNames, verifyChain } from '../x509/trust.js';
import { cleartextAllowed, requireTlsUrl } from '../cleartext.js';
import { step, testSwitchesOn } from '../faults.js';
import { timelineBuckets, timelinePerfData } from '../x509/timeline.js';
import { dataDir } from '../config.js';
import { errorMessage, PasstoreError } from '../errors.js';
import { printable } from '../names.js';
import type { Fetcher, Outcome } from '../fetchers/fetcher.js';
import { deployHost } from '../remote/deploy.js';
import { driftOf } from '../remote/drift.js';
import { NOT_STARTED, runPool } from '../pool.js';
import type { Context } from '../command.js';
import { DEFAULT_CONCURRENCY, isKeyType } from '../policy.js';
import type { ReconcileLine, Session } from '../session.js';
import type { CertRow, RequestRow } from '../storage/store.js';
import { acceptCertificate } from '../x509/cert-store.js';
import { belowDefaultCost } from '../vault/kdf.js';
import { daysLeft } from '../x509/certificate.js';
import { readObjects } from '../x509/pem.js';
import { makeRequest, RequestAlreadyOpen } from '../x509/renewal.js';
import { sortDelivered } from '../x509/delivery.js';
import { ChainPool } from '../x509/chain.js';

export interface JobReport {
  lines: string[];
  failures: string[];
  /** Things that still need doing (a request not mailed): printed as WARNING lines. */
  warnings: string[];
  /** Hosts whose certificate this job stored (fetch): their deploy was tried already. */
  stored: string[];
}

const emptyReport = (): JobReport => ({ lines: [], failures: [], warnings: [], stored: [] });

/**
 * What a job is handed: the session's one context (the same the shell's commands get:
 * `change` is the vault's transaction) plus who passtore-cron stores things as.
 */
export type CronContext = Pick<Context, 'config' | 'store' | 'vault' | 'remote' | 'guard' | 'operator' | 'change' | 'audit'> & {
  /** The key file passtore-cron unlocked with, as the audit trail and stored_by name it. */
  actor: string;
  reconcile(): Promise<ReconcileLine[]>;
  /** Aborted when passtore-cron is asked to stop (SIGTERM, SIGHUP, SIGINT): deploys in flight finish, no other starts. */
  signal?: AbortSignal;
};

/** The job context of an open, unlocked session (built once per run). */
export function cronContext(session: Session, signal?: AbortSignal): CronContext {
  const c = session.context;
  return { config: c.config, store: c.store, vault: c.vault, remote: c.remote, guard: c.guard, operator: c.operator, change: c.change, audit: c.audit, actor: session.cronActor, reconcile: () => session.reconcile(signal), signal };
}

/**
 * A passtore-cron command as its usage (`passtore-cron --help`) and passtore-cron(8)
 * show it; CRON_COMMANDS lists them all.
 */
export interface CronCommand {
  name: 'renew' | 'fetch' | 'run' | 'verify' | 'send' | 'check' | 'daemon';
  summary: string;
  /** The boolean options this command takes besides --config: shown as `[--NAME]`. */
  options?: Array<'dry-run'>;
}

/** A passtore-cron job, declared like a shell command. */
export interface CronJob extends CronCommand {
  name: 'renew' | 'fetch' | 'run' | 'verify' | 'send';
  /** 'lease': acts only while holding the run lease (one run at a time, any machine). */
  needs: Array<'lease'>;
  /** The audit action recorded when the job as a whole fails. */
  audit: string;
  run(ctx: CronContext, options: { dryRun: boolean }): Promise<JobReport>;
}

const DAY = 86_400_000;

/** The fetchers `[ca]` configures, in a fixed order: dir, http, imap, acme. */
export async function configuredFetchers(ctx: Pick<CronContext, 'config' | 'store' | 'vault' | 'change' | 'audit'>): Promise<Fetcher[]> {
  const ca = ctx.config.ca;
  const out: Fetcher[] = [];
  // Loaded on demand: the IMAP and ACME libraries are large, and most runs need neither.
  if (ca.dir) out.push(new (await import('../fetchers/dir.js')).DirFetcher(ca.dir));
  if (ca.http_url) requireTlsUrl(ctx.config, 'http_url', ca.http_url);
  if (ca.imap_url) requireTlsUrl(ctx.config, 'imap_url', ca.imap_url);
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
        accountKeys: {
          async load(name) {
            const row = await ctx.store.getAccountKey(name);
            return row ? ctx.vault.openAccountKey(row) : undefined;
          },
          // Sealed in the vault's transaction, like every other secret.
          save: (name, pem, detail) =>
            ctx.change(async (tx) => {
              await tx.addAccountKey({ name, keyCiphertext: ctx.vault.sealAccountKey(name, pem), createdAt: new Date().toISOString() });
              await ctx.audit({ action: 'account-key', target: name, outcome: 'ok', detail }, tx);
            }),
        },
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

/**
 * Makes new keys and requests for certificates within crt_ttl days of expiry, and staged
 * reminders. With no admin_email (and a CA reached other than by ACME), a request would
 * reach no one: renew refuses before it makes any key. A host whose request is already
 * open gets none (also when another run or a shell's crtreq made it meanwhile).
 */
export async function renew(ctx: CronContext, options: { dryRun?: boolean } = {}): Promise<JobReport> {
  const { config, store } = ctx;
  const report = emptyReport();
  const now = Date.now();
  const window = Math.max(config.crtTtl, ...config.notifyDays);
  const soon = await store.expiringCertificates(new Date(now + window * DAY).toISOString());
  const hostsWithOpenRequest = new Set((await store.openRequests('*')).map((r) => r.hostId));
  const acmeOnly = Boolean(config.ca.acme_directory) && !config.ca.dir && !config.ca.http_url && !config.ca.imap_url;
  const canMail = config.adminEmail.length > 0;
  const due = soon.filter((c) => daysLeft(c.notAfter, now) <= config.crtTtl && !hostsWithOpenRequest.has(c.hostId));
  if (due.length > 0 && !acmeOnly && !canMail && !options.dryRun) {
    report.failures.push(`renew: ${due.length} certificate${due.length === 1 ? ' is' : 's are'} due (${due.slice(0, 5).map((c) => c.fqdn).join(', ')}${due.length > 5 ? ', …' : ''}) but admin_email is not set, so no request could reach anyone; no key or request was made`);
    return report;
  }
  for (const cert of soon) {
    const days = daysLeft(cert.notAfter, now);
    if (due.includes(cert)) {
      if (options.dryRun) report.lines.push(`would renew ${cert.fqdn}: expires ${cert.notAfter.slice(0, 10)} (${days} days)`);
      else {
        try {
          const host = (await store.getHost(cert.fqdn))!;
          // The renewal keeps the other DNS names the vault itself asked for (never the old
          // certificate's alone) and its key's type.
          const extra = renewalNames(cert.fqdn, cert.keyId, await store.listRequests(cert.hostId));
          const type = isKeyType(cert.keyType) ? cert.keyType : config.keyType;
          // The request mail is queued in the request's own transaction: no request without its mail.
          const made = await makeRequest(ctx, host, type, extra, 'renew', async (tx, r) => {
            if (acmeOnly) return;
            await tx.queueMail({ dedupeKey: `request:${r.requestId}`, recipients: config.adminEmail, subject: `passtore: certificate request for ${cert.fqdn}`, body: requestMailBody(cert.fqdn, r.subject, r.sans, cert.notAfter), attachments: [{ filename: `${cert.fqdn}.req`, content: r.pem }] });
          });
          report.lines.push(`renew ${cert.fqdn}: new ${made.keyType} key and request (expires ${cert.notAfter.slice(0, 10)}, ${days} days)`);
        } catch (e) {
          // Another run or a shell made the request meanwhile: this renewal is done.
          if (e instanceof RequestAlreadyOpen) report.lines.push(`renew ${cert.fqdn}: a request made meanwhile is open; no new key`);
          else report.failures.push(`renew ${cert.fqdn}: ${errorMessage(e)}`);
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
export async function fetch(ctx: CronContext): Promise<JobReport> {
  const { config, store } = ctx;
  const report = emptyReport();
  const pending = await store.openRequests('*');
  if (pending.length === 0) {
    report.lines.push('fetch: no open request');
    await redeploy(ctx, report);
    return report;
  }
  const fetchers = await configuredFetchers(ctx);
  if (fetchers.length === 0) {
    report.lines.push(`fetch: ${count(pending.length, 'open request')}, and no [ca] fetcher configured`);
    await redeploy(ctx, report);
    return report;
  }
  // Loaded once a run; a bad [ca] trust fails the fetch as a configuration error.
  const anchors = config.ca.trust ? loadTrust(config.ca.trust) : undefined;
  const stored: Stored[] = [];
  const mail = (key: string | null, subject: string, body: string, attachments: Array<{ filename: string; content: string }> = []) =>
    config.adminEmail.length ? store.queueMail({ dedupeKey: key, recipients: config.adminEmail, subject, body, attachments }) : Promise.resolve(false);
  for (const fetcher of fetchers) {
    const fetchContext = { config, guard: ctx.guard, problem: (text: string) => report.failures.push(`fetch ${fetcher.name}: ${fetcher.name} fetcher: ${printable(text, 300)}`) };
    let deliveries;
    try {
      deliveries = await fetcher.collect(pending, fetchContext);
    } catch (e) {
      const why = errorMessage(e);
      report.failures.push(`fetch ${fetcher.name}: ${why}`);
      await mail(`fetcher-failed:${fetcher.name}:${new Date().toISOString().slice(0, 10)}`, `passtore: WARNING: the ${fetcher.name} fetcher failed`, `${why}\n\n(One such warning a day per fetcher.)`);
      continue;
    }
    for (const d of deliveries) {
      // A file name, URL or mail subject is outside input: one line in every report and mail.
      const source = printable(d.source, 300);
      const outcome = await storeDelivery(ctx, source, d.data, report, mail, stored, d.fromCa ? 'from-ca' : anchors);
      await d.settle(outcome).catch((e) => report.failures.push(`fetch ${fetcher.name}: ${source}: ${errorMessage(e)}`));
    }
    await fetcher.finish?.(fetchContext).catch((e) => report.failures.push(`fetch ${fetcher.name}: ${errorMessage(e)}`));
  }
  await deployStored(ctx, stored, report, mail);
  await redeploy(ctx, report);
  return report;
}

/** Deploys again the certificates an earlier run stored but could not deploy. */
async function redeploy(ctx: CronContext, report: JobReport): Promise<void> {
  // Certificates stored since the host's last deploy: those passtore-cron stored (the
  // request was made by passtore, so the operators expect it deployed), not yet deployed.
  const waiting = (await ctx.store.currentCertificates('*')).filter(
    (c) => c.deployedAt === null && c.storedBy === ctx.actor && !report.stored.includes(c.fqdn),
  );
  for (const c of waiting) {
    if (ctx.signal?.aborted) {
      report.failures.push(`deploy ${c.fqdn} (retried): ${NOT_STARTED}`);
      continue;
    }
    const host = await ctx.store.getHost(c.fqdn);
    if (!host) continue;
    try {
      const result = await deployHost(ctx, host, false, ctx.signal);
      report.lines.push(`${c.fqdn}: ${result} (retried)`);
      if (ctx.config.adminEmail.length) {
        await ctx.store.queueMail({ dedupeKey: null, recipients: ctx.config.adminEmail, subject: `passtore: certificate for ${c.fqdn} deployed (retried)`, body: `The certificate of ${c.fqdn} (serial ${c.serial}), stored by an earlier run that could not deploy it, was ${result}.`, attachments: [] });
      }
    } catch (e) {
      report.failures.push(`deploy ${c.fqdn} (retried): ${errorMessage(e)}`);
    }
  }
}

type Mailer = (key: string | null, subject: string, body: string, attachments?: Array<{ filename: string; content: string }>) => Promise<boolean>;

/**
 * Stores the certificates of one delivery that answer a pending request: the key must be
 * pending, the chain must verify to `[ca] trust` (unless the CA itself answered an ACME
 * order), and its DNS names must be among the request's. Anything else is refused,
 * reported, mailed once and audited, naming its issuer.
 */
async function storeDelivery(ctx: CronContext, source: string, data: Buffer, report: JobReport, mail: Mailer, stored: Stored[], trust: X509Certificate[] | 'from-ca' | undefined): Promise<Outcome> {
  const { store } = ctx;
  const { objects, problems } = readObjects(data);
  // The same sorting as getcrt: the chain is no host's, a self-signed host certificate taken.
  const delivered = objects.flatMap((o) => (o.kind === 'certificate' ? [o] : []));
  const certs = (await sortDelivered(delivered, store)).hosts;
  // The rest of the delivery: those that issue a stored certificate are stored with it as its chain.
  const pool = new ChainPool(delivered.filter((o) => !certs.some((c) => c.cert === o.cert)));
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
    else refusal = await trustProblem(ctx, c.cert, c.facts, key, objects, source, trust);
    let fqdn = key?.fqdn;
    if (!refusal) {
      try {
        const accepted = await ctx.change(async (tx) => {
          const a = await acceptCertificate(tx, ctx.vault, c.cert, c.facts, { by: ctx.actor, chain: pool });
          await ctx.audit({ action: 'fetch', target: a.fqdn, outcome: 'ok', detail: source.slice(0, 200) }, tx);
          return a;
        });
        fqdn = accepted.fqdn;
      } catch (e) {
        refusal = `${source}: ${errorMessage(e)}`;
      }
    }
    if (refusal) {
      outcome = 'refused';
      report.failures.push(`refused: ${refusal}`);
      await ctx.audit({ action: 'fetch', target: key?.fqdn ?? 'unknown', outcome: 'refused', detail: refusal.slice(0, 300) }).catch(() => undefined);
      await mail(`refused:${c.facts.fingerprintSha256}`, `passtore: WARNING: a certificate was refused`, `${refusal}\n\nNothing was stored. The certificate is attached for reference.`, [{ filename: 'refused.pem', content: c.facts.pem }]);
      continue;
    }
    if (outcome !== 'refused') outcome = 'stored';
    report.lines.push(`stored the certificate for ${fqdn} from ${source} (not after ${c.facts.notAfter.slice(0, 10)})`);
    report.stored.push(fqdn!);
    stored.push({ fqdn: fqdn!, source, serial: c.facts.serial, notAfter: c.facts.notAfter, pem: c.facts.pem });
  }
  // Named once something of this delivery was stored (else the refusal says enough).
  const unused = stored.some((s) => s.source === source) ? pool.unused() : [];
  if (unused.length) report.lines.push(`${source}: passed over ${unused.length} chain certificate${unused.length === 1 ? '' : 's'} that issue${unused.length === 1 ? 's' : ''} none of the certificates stored: ${unused.map((u) => u.facts.subject || '(empty subject)').join('; ').slice(0, 300)}`);
  return outcome;
}

/** Why a matched certificate is not believed (its issuer named), or undefined. */
async function trustProblem(
  ctx: Pick<CronContext, 'store'>,
  cert: X509Certificate,
  facts: CertFacts,
  key: KeyRow,
  objects: ReturnType<typeof readObjects>['objects'],
  source: string,
  trust: X509Certificate[] | 'from-ca' | undefined,
): Promise<string | undefined> {
  const what = `certificate ${facts.subject} (issuer ${facts.issuer}) from ${source}`;
  if (trust === undefined) return `${what}: no [ca] trust is configured, so no fetched certificate is believed; set [ca] trust to the CA bundle or directory`;
  if (trust !== 'from-ca') {
    const chain = objects.flatMap((o) => (o.kind === 'certificate' && o.cert.ca ? [o.cert] : []));
    const verdict = verifyChain(cert, chain, trust);
    if (!verdict.ok) return `${what}: ${verdict.why}`;
  }
  const request = (await ctx.store.listRequests(key.hostId)).find((r) => r.keyId === key.id);
  const asked = request ? request.sans.split(',').filter(Boolean) : [key.fqdn];
  // One that does not name the key's host at all is refused by acceptCertificate, saying so.
  const outside = facts.sans.includes(key.fqdn) ? namesOutside(facts.sans, asked) : [];
  if (outside.length > 0) return `${what} names ${outside.join(', ')}, which the request for ${key.fqdn} did not ask for`;
  return undefined;
}

interface Stored {
  fqdn: string;
  source: string;
  serial: string;
  notAfter: string;
  pem: string;
}

/** Deploys what fetch stored, several hosts at once (as putcrt does), and mails each result. */
async function deployStored(ctx: CronContext, stored: Stored[], report: JobReport, mail: Mailer): Promise<void> {
  const results = await runPool(stored, DEFAULT_CONCURRENCY, async (s) => deployHost(ctx, (await ctx.store.getHost(s.fqdn))!, false, ctx.signal), undefined, ctx.signal);
  for (const r of results) {
    const s = r.item;
    if (r.ok) {
      report.lines.push(`${s.fqdn}: ${r.value}`);
      await mail(null, `passtore: new certificate for ${s.fqdn} stored and deployed`, `The certificate of ${s.fqdn} (serial ${s.serial}, not after ${s.notAfter.slice(0, 10)}) from ${s.source} matched its key, was stored, and was ${r.value}.`, [{ filename: `${s.fqdn}.pem`, content: s.pem }]);
    } else {
      const why = errorMessage(r.error);
      report.failures.push(`deploy ${s.fqdn}: ${why}`);
      await mail(null, `passtore: WARNING: certificate for ${s.fqdn} stored but not deployed`, `The certificate of ${s.fqdn} from ${s.source} was stored, but deploying it failed: ${why}\nThe next passtore-cron run tries again; or run putcrt ${s.fqdn} once the host is reachable.`);
    }
  }
}

/** Sends the outbox. */
export async function send(ctx: CronContext): Promise<JobReport> {
  const report = emptyReport();
  try {
    const { sendOutbox } = await import('../mail/mailer.js');
    const r = await sendOutbox(ctx.config, ctx.store, ctx.guard);
    if (r.sent) report.lines.push(`mail: ${r.sent} sent`);
    report.failures.push(...r.failed);
  } catch (e) {
    const queued = await ctx.store.countQueuedMail();
    report.failures.push(`mail: ${errorMessage(e)} (${queued} stay queued)`);
  }
  return report;
}

/** renew, fetch (store and deploy), then send what is queued. */
export async function run(ctx: CronContext): Promise<JobReport> {
  const reconciled = emptyReport();
  for (const line of await ctx.reconcile()) (line.resolved ? reconciled.lines : reconciled.failures).push(`reconcile ${line.text}`);
  const renewed = await renew(ctx);
  step('cron-renewed');
  const fetched = await fetch(ctx);
  step('cron-fetched');
  const parts = [reconciled, renewed, fetched, await send(ctx)];
  return { lines: parts.flatMap((p) => p.lines), failures: parts.flatMap((p) => p.failures), warnings: parts.flatMap((p) => p.warnings), stored: parts.flatMap((p) => p.stored) };
}

/** Confirms each host's stored root password on the host (a login, else its shadow entry) and reports where vault and host disagree. */
export async function verify(ctx: CronContext): Promise<JobReport> {
  const report = emptyReport();
  const entries = (await ctx.store.findEntries('*', 'root', 'ssh')).filter((e) => e.state === 'set');
  for (const e of entries) {
    const host = (await ctx.store.getHost(e.fqdn))!;
    if (!host.sshHostKey) {
      report.failures.push(`verify ${e.fqdn}: no pinned SSH host key (run host trust)`);
      continue;
    }
    await ctx.vault.refresh(); // a shell may rekey during a long verify
    const password = ctx.vault.openPassword(e);
    try {
      // A fresh root login, or where the host refuses one, its shadow entry over the key login.
      const ok = await ctx.remote.confirmPassword(host, 'root', password, ctx.signal);
      if (ok) report.lines.push(`verify ${e.fqdn}: the host accepts the vault's root password`);
      else report.failures.push(`verify ${e.fqdn}: the host REFUSES the vault's root password`);
    } catch (err) {
      report.failures.push(`verify ${e.fqdn}: ${errorMessage(err)}`);
    } finally {
      password.wipe();
    }
  }
  if (entries.length === 0) report.lines.push('verify: no root password stored');
  // Drift: the files of each deployed host's profiles, read back without changing anything.
  for (const c of (await ctx.store.currentCertificates('*')).filter((x) => x.deployedAt)) {
    const host = (await ctx.store.getHost(c.fqdn))!;
    if (!host.sshHostKey) continue;
    try {
      const problems = await driftOf(ctx, host, ctx.signal);
      await ctx.store.setHostDrift(host.id, problems.length ? problems.join('; ').slice(0, 1000) : null, new Date().toISOString());
      if (problems.length === 0) report.lines.push(`verify ${c.fqdn}: the deployed files match the vault`);
      else {
        report.failures.push(`verify ${c.fqdn}: DRIFT: ${problems.join('; ')}`);
        await ctx.audit({ action: 'drift', target: c.fqdn, outcome: 'failed', detail: problems.join('; ').slice(0, 200) }).catch(() => undefined);
      }
    } catch (err) {
      report.failures.push(`verify ${c.fqdn}: deployed files not checked: ${errorMessage(err)}`);
    }
  }
  return report;
}

/** What still needs doing and no step may forget: requests not mailed, certificates not deployed. */
export interface Outstanding {
  /** Open requests whose request mail is still queued (SMTP down, never reached). */
  unmailed: Array<{ request: RequestRow; attempts: number; lastError: string | null }>;
  /** Certificates passtore-cron stored whose deploy has not succeeded yet. */
  undeployed: CertRow[];
}

/** Reads what is outstanding (two queries and the open requests; no lock, never waits). */
export async function outstanding(ctx: Pick<CronContext, 'store' | 'actor'>): Promise<Outstanding> {
  const mails = new Map((await ctx.store.unsentMail()).map((m) => [m.dedupeKey, m]));
  const unmailed: Outstanding['unmailed'] = [];
  for (const request of await ctx.store.openRequests('*')) {
    const m = mails.get(`request:${request.id}`);
    if (m) unmailed.push({ request, attempts: m.attempts, lastError: m.lastError });
  }
  const undeployed = (await ctx.store.currentCertificates('*')).filter((c) => c.deployedAt === null && c.storedBy === ctx.actor);
  return { unmailed, undeployed };
}

/** The WARNING lines for what is outstanding. */
export function outstandingWarnings(o: Outstanding): string[] {
  return [
    ...o.unmailed.map((u) => `the request for ${u.request.fqdn} (made ${u.request.createdAt.slice(0, 10)}) is not mailed yet: ${u.attempts === 0 ? 'not tried' : `${u.attempts} attempt${u.attempts === 1 ? '' : 's'}, last: ${printable(u.lastError ?? 'unknown', 160)}`}; it stays queued`),
    ...o.undeployed.map((c) => `the certificate for ${c.fqdn} (stored ${c.storedAt.slice(0, 10)}) is not deployed yet; the next run tries again`),
  ];
}

/** The monitoring plugin's answer: Nagios/Icinga status, one line, performance data. */
export async function check(ctx: Pick<CronContext, 'store' | 'config' | 'actor'>): Promise<{ status: 0 | 1 | 2 | 3; line: string }> {
  const { store, config } = ctx;
  const now = Date.now();
  const certs = await store.currentCertificates('*');
  const expired = certs.filter((c) => Date.parse(c.notAfter) <= now);
  const soon = certs.filter((c) => Date.parse(c.notAfter) > now && daysLeft(c.notAfter, now) <= config.crtTtl);
  const open = await store.openRequests('*');
  const queued = await store.countQueuedMail();
  const o = await outstanding(ctx);
  // Drift as the last passtore-cron verify found it (check itself connects nowhere).
  const drifted = (await store.findHosts('*')).filter((h) => h.drift);
  const timeline = timelinePerfData(timelineBuckets(certs, new Set(open.map((r) => r.fqdn)), now, config.crtTtl));
  const perf = `certificates=${certs.length} expiring=${soon.length};;;0 expired=${expired.length};;;0 open_requests=${open.length} queued_mail=${queued} unmailed_requests=${o.unmailed.length} undeployed=${o.undeployed.length} drifted=${drifted.length};1;;0 ${timeline}`;
  const list = (fqdns: string[]) => fqdns.slice(0, 5).join(', ') + (fqdns.length > 5 ? ', …' : '');
  const names = (certs: CertRow[]) => list(certs.map((c) => c.fqdn));
  // Under the test suite (its switch set) every vault is a cheap one: only an installed
  // passtore warns.
  const cheap = testSwitchesOn() ? [] : (await store.listSlots()).filter((s) => belowDefaultCost(s.kdf));
  const clear = cleartextAllowed(config);
  // What still needs doing, or is set unsafely, is a warning of its own, added to any status line.
  const todo = [
    ...(o.unmailed.length ? [`${count(o.unmailed.length, 'request')} not mailed: ${list(o.unmailed.map((u) => u.request.fqdn))}`] : []),
    ...(o.undeployed.length ? [`${count(o.undeployed.length, 'certificate')} not deployed: ${names(o.undeployed)}`] : []),
    ...(drifted.length ? [`${count(drifted.length, 'host')} drifted from the vault: ${list(drifted.map((h) => h.fqdn))}`] : []),
    ...(clear.length ? [`cleartext allowed (${clear.join(', ')}): credentials and certificates may travel unencrypted`] : []),
    ...(cheap.length ? [`key slot${cheap.length === 1 ? '' : 's'} below the default scrypt cost (a test setting): ${cheap.map((s) => `${s.kind} ${s.name}`).join(', ')}`] : []),
  ];
  const more = todo.map((t) => `; ${t}`).join('');
  if (expired.length > 0) return { status: 2, line: `PASSTORE CRITICAL - ${expired.length} expired: ${names(expired)}${more} | ${perf}` };
  if (soon.length > 0) return { status: 1, line: `PASSTORE WARNING - ${soon.length} within ${config.crtTtl} days: ${names(soon)}${more} | ${perf}` };
  if (todo.length > 0) return { status: 1, line: `PASSTORE WARNING - ${todo.join('; ')} | ${perf}` };
  return { status: 0, line: `PASSTORE OK - ${certs.length} certificates, none within ${config.crtTtl} days | ${perf}` };
}

/** The jobs, in the order `run` does them; main.ts and the daemon run them from here. */
export const CRON_JOBS: readonly CronJob[] = [
  { name: 'renew', summary: 'new keys and requests for certificates within crt_ttl days; reminders', options: ['dry-run'], needs: ['lease'], audit: 'cron-renew', run: (ctx, o) => renew(ctx, o) },
  { name: 'fetch', summary: 'pick up issued certificates, store the matching ones, deploy, mail', needs: ['lease'], audit: 'cron-fetch', run: (ctx) => fetch(ctx) },
  { name: 'run', summary: 'reconcile interrupted password changes, renew, fetch, deploy, send mail', needs: ['lease'], audit: 'cron-run', run: (ctx) => run(ctx) },
  { name: 'send', summary: 'send the queued mail only', needs: ['lease'], audit: 'cron-send', run: (ctx) => send(ctx) },
  { name: 'verify', summary: 'log in to each host with its stored root password; report disagreements', needs: ['lease'], audit: 'cron-verify', run: (ctx) => verify(ctx) },
];

/**
 * Every command passtore-cron takes, in the order its usage lists them: the jobs, then
 * `check` (above; it reports and changes nothing) and `daemon` (src/cron/main.ts: it runs
 * the [schedule] entries). main.ts accepts these names and builds its usage from them.
 */
export const CRON_COMMANDS: readonly CronCommand[] = [
  ...CRON_JOBS,
  { name: 'check', summary: 'monitoring plugin (Nagios/Icinga): certificate expiry and renewal state' },
  { name: 'daemon', summary: 'stay up and run the [schedule] jobs' },
];

/** A command's usage: its name and options, `renew [--dry-run]`. */
export const cronCommandUsage = (c: CronCommand): string => [c.name, ...(c.options ?? []).map((o) => `[--${o}]`)].join(' ');
