/**
 * `passtore-cron`: the headless entry point. It unlocks with the key file (refusing one
 * group or others can read), never asks anything, never prints a secret, and exits 0 when
 * all is done (nothing to do included), 1 when a step failed (one line each), 2 on a
 * usage or configuration error, 3 when the vault cannot be unlocked. `check` follows the
 * Nagios/Icinga plugin conventions instead.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Output, Prompter } from '../command.js';
import { loadConfig, type Config } from '../config.js';
import { ExitStatus, exitStatusOf, formatError, PasstoreError } from '../errors.js';
import type { Secret } from '../secret.js';
import { Session } from '../session.js';
import { check, CRON_JOBS, cronContext, outstanding, outstandingWarnings, type CronJob, type JobReport } from './jobs.js';
import { acquireLease, heldBy, isHeld, type HeldLease } from './lease.js';

export const CRON_USAGE = `usage: passtore-cron [--config FILE] COMMAND
commands:
  renew [--dry-run]  new keys and requests for certificates within crt_ttl days; reminders
  fetch              pick up issued certificates, store the matching ones, deploy, mail
  run                reconcile interrupted password changes, renew, fetch, deploy, send mail
  send               send the queued mail only
  verify             log in to each host with its stored root password; report disagreements
  check              monitoring plugin (Nagios/Icinga): certificate expiry and renewal state
  daemon             stay up and run the [schedule] jobs
See passtore-cron(8).`;

const COMMANDS = ['renew', 'fetch', 'run', 'verify', 'check', 'daemon', 'send'] as const;
type Command = (typeof COMMANDS)[number];

/** The prompter of a program with no one at the keyboard: it refuses. */
const noPrompt: Prompter = {
  secret(): Promise<Secret> {
    throw new PasstoreError('policy', 'passtore-cron never asks for anything');
  },
  confirm(): Promise<boolean> {
    throw new PasstoreError('policy', 'passtore-cron never asks for anything');
  },
};

function stdoutOutput(): Output {
  return {
    line: (text = '') => process.stdout.write(`${text}\n`),
    table: (head, rows) => {
      for (const r of rows) process.stdout.write(`${r.join('  ')}\n`);
    },
    progress: () => undefined,
    paint: (text) => text,
  };
}

/** A session of passtore-cron; a job that acts holds the run lease in `lease`. */
interface CronSession {
  session: Session;
  lease?: HeldLease;
}

/**
 * Opens and unlocks a session. With `lease`, the run lease is taken first (waiting up to
 * lease_wait); when another run keeps it, this says so in one line and resolves to
 * undefined. Only the lease holder closes a guard left open (check never does: it must
 * not cut a running job's transfer).
 */
async function openSession(config: Config, options: { lease: boolean } = { lease: false }): Promise<CronSession | undefined> {
  const out = stdoutOutput();
  const session = await Session.open({ config, prompt: noPrompt, out, terminal: false, createStore: false });
  let lease: HeldLease | undefined;
  try {
    if (options.lease) {
      const got = await acquireLease(session.store, { timeSeconds: config.leaseTime, waitSeconds: config.leaseWait });
      if (!isHeld(got)) {
        out.line(heldBy(got));
        await session.close();
        return undefined;
      }
      lease = got;
      const closed = await session.recoverGuard();
      if (closed > 0) out.line(`closed the network guard an earlier run left open (${closed})`);
    }
    if (!config.keyfile) throw new PasstoreError('locked', 'no key file configured (keyfile = PATH in the configuration; make one with keyfile create)');
    await session.unlockWithKeyfile(config.keyfile);
  } catch (e) {
    await lease?.release().catch(() => undefined);
    await session.close().catch(() => undefined);
    throw e;
  }
  return { session, lease };
}

/** Frees the lease (if held) and closes the session. */
async function closeSession(cs: CronSession): Promise<void> {
  await cs.lease?.release().catch(() => undefined);
  await cs.session.close().catch(() => undefined);
}

/**
 * Runs one job with the session's context. What still needs doing is read after it and
 * reported as WARNING lines; a job that fails as a whole is recorded in the audit trail.
 */
async function runJob(cs: CronSession, job: CronJob, dryRun: boolean): Promise<JobReport> {
  const ctx = cronContext(cs.session);
  let report: JobReport;
  try {
    report = await job.run(ctx, { dryRun });
  } catch (e) {
    await cs.session.audit({ action: job.audit, target: 'passtore-cron', outcome: 'failed', detail: formatError(e).replace(/^error: /, '').slice(0, 300) }).catch(() => undefined);
    throw e;
  }
  // A certificate not deployed is retried (and its failure printed) by fetch and run, and
  // reported by check; an unmailed request only here, by every run.
  if (!dryRun) report.warnings.push(...outstandingWarnings({ ...(await outstanding(ctx)), undeployed: [] }));
  if (cs.lease?.lost) report.failures.push('the run lease expired while this run worked and another run took it over (raise lease_time)');
  return report;
}

function printReport(r: JobReport): number {
  for (const l of r.lines) process.stdout.write(`${l}\n`);
  for (const w of r.warnings) process.stdout.write(`WARNING: ${w}\n`);
  for (const f of r.failures) process.stdout.write(`FAILED: ${f}\n`);
  return r.failures.length > 0 ? ExitStatus.failed : ExitStatus.ok;
}

function version(): string {
  return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Runs passtore-cron with `argv`; resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  process.umask(0o077);
  let args;
  try {
    args = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, 'dry-run': { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' } }, allowPositionals: true });
  } catch (e) {
    process.stderr.write(`passtore-cron: ${(e as Error).message.split('\n')[0]}\n${CRON_USAGE}\n`);
    return ExitStatus.usage;
  }
  if (args.values.help) {
    process.stdout.write(`${CRON_USAGE}\n`);
    return ExitStatus.ok;
  }
  if (args.values.version) {
    process.stdout.write(`passtore-cron ${version()}\n`);
    return ExitStatus.ok;
  }
  const [command, ...rest] = args.positionals;
  if (!command || !COMMANDS.includes(command as Command) || rest.length > 0 || (args.values['dry-run'] && command !== 'renew')) {
    process.stderr.write(`passtore-cron: ${command ? `unexpected '${[command, ...rest].join(' ')}'` : 'a command is required'}\n${CRON_USAGE}\n`);
    return ExitStatus.usage;
  }
  let config: Config;
  try {
    config = loadConfig(args.values.config ?? undefined);
  } catch (e) {
    process.stdout.write(`${command === 'check' ? 'PASSTORE UNKNOWN - ' : 'passtore-cron: '}${formatError(e).replace(/^error: /, '')}\n`);
    return command === 'check' ? 3 : exitStatusOf(e);
  }
  if (command === 'daemon') return daemon(config);
  const job = CRON_JOBS.find((j) => j.name === command);
  let cs: CronSession | undefined;
  try {
    // A dry run changes nothing, so it needs no lease.
    cs = await openSession(config, { lease: (job?.needs.includes('lease') ?? false) && !args.values['dry-run'] });
    // Another run holds the lease: said in one line; not a failure.
    if (!cs) return ExitStatus.ok;
  } catch (e) {
    const line = formatError(e).replace(/^error: /, '');
    if (command === 'check') {
      process.stdout.write(`PASSTORE UNKNOWN - the vault cannot be opened: ${line}\n`);
      return 3;
    }
    process.stdout.write(`passtore-cron: ${line}\n`);
    const status = exitStatusOf(e);
    return status === ExitStatus.usage ? status : ExitStatus.locked;
  }
  try {
    if (!job) {
      const r = await check(cronContext(cs.session));
      process.stdout.write(`${r.line}\n`);
      return r.status;
    }
    return printReport(await runJob(cs, job, Boolean(args.values['dry-run'])));
  } catch (e) {
    process.stdout.write(`${command === 'check' ? 'PASSTORE UNKNOWN - ' : 'FAILED: '}${formatError(e).replace(/^error: /, '')}\n`);
    return command === 'check' ? 3 : exitStatusOf(e) === ExitStatus.usage ? ExitStatus.usage : ExitStatus.failed;
  } finally {
    await closeSession(cs);
  }
}

/** Stays up and runs the `[schedule]` jobs (node-schedule cron expressions), one at a time. */
async function daemon(config: Config): Promise<number> {
  // Loaded here: only the daemon schedules, and every other command (check above all) starts faster without it.
  const { default: schedule } = await import('node-schedule');
  const entries = Object.entries(config.schedule);
  if (entries.length === 0) {
    process.stdout.write('passtore-cron: [schedule] is empty; nothing to run (e.g. run = 17 3 * * *)\n');
    return ExitStatus.usage;
  }
  let busy: Promise<unknown> = Promise.resolve();
  const jobs = [];
  for (const [name, expr] of entries) {
    const job = schedule.scheduleJob(name, expr, () => {
      busy = busy.then(async () => {
        process.stdout.write(`${new Date().toISOString()} ${name}: starting\n`);
        const job = CRON_JOBS.find((j) => j.name === name);
        let cs: CronSession | undefined;
        try {
          cs = await openSession(config, { lease: job?.needs.includes('lease') ?? false });
          if (!cs) return;
          if (!job) process.stdout.write(`${(await check(cronContext(cs.session))).line}\n`);
          else printReport(await runJob(cs, job, false));
        } catch (e) {
          process.stdout.write(`${new Date().toISOString()} ${name}: FAILED: ${formatError(e).replace(/^error: /, '')}\n`);
        } finally {
          if (cs) await closeSession(cs);
        }
      });
    });
    if (!job) {
      await schedule.gracefulShutdown();
      process.stdout.write(`passtore-cron: [schedule] ${name}: '${expr}' is not a cron expression\n`);
      return ExitStatus.usage;
    }
    jobs.push(job);
    process.stdout.write(`scheduled ${name}: ${expr} (next ${job.nextInvocation()?.toISOString?.() ?? 'never'})\n`);
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await schedule.gracefulShutdown();
  await busy;
  return ExitStatus.ok;
}
