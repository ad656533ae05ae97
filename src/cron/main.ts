/**
 * `passtore-cron`: the headless entry point. It unlocks with the key file (refusing one
 * group or others can read), never asks anything, never prints a secret, and exits 0 when
 * all is done (nothing to do included), 1 when a step failed (one line each), 2 on a
 * usage or configuration error, 3 when the vault cannot be unlocked. `check` follows the
 * Nagios/Icinga plugin conventions instead.
 */
import { terminalSafe } from '../names.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Output, Prompter } from '../command.js';
import { loadConfig, type Config } from '../config.js';
import { ExitStatus, exitStatusOf, errorMessage, PasstoreError } from '../errors.js';
import type { Secret } from '../secret.js';
import { Session } from '../session.js';
import { check, CRON_COMMANDS, cronCommandUsage, CRON_JOBS, cronContext, outstanding, outstandingWarnings, type CronJob, type JobReport } from './jobs.js';
import { acquireLease, heldBy, isHeld, type HeldLease } from './lease.js';
import { describeOptionError } from '../option-errors.js';
import { didYouMean } from '../suggest.js';
import { onStopSignals, signalStatus } from '../cancel.js';

/**
 * Aborted on SIGTERM, SIGHUP or SIGINT: the job running stops starting deploys and
 * finishes those in flight (their network guard closed), then the process exits.
 */
const stopping = new AbortController();
let stoppedBy: NodeJS.Signals | undefined;

/** The names passtore-cron accepts as its COMMAND, from the descriptors in jobs.ts. */
const COMMANDS: readonly string[] = CRON_COMMANDS.map((c) => c.name);

/**
 * The usage (`--help`, and after a usage error), built from CRON_COMMANDS: a line per
 * command with its options and summary, as the shell's `help` reads the command
 * descriptors; passtore-cron(8) gives each of these lines as the tag of its subsection.
 */
export const CRON_USAGE = ((): string => {
  const usages = CRON_COMMANDS.map((c) => [cronCommandUsage(c), c.summary] as const);
  const width = Math.max(...usages.map(([u]) => u.length));
  return ['usage: passtore-cron [--config FILE] COMMAND', 'commands:', ...usages.map(([u, summary]) => `  ${u.padEnd(width)}  ${summary}`), 'See passtore-cron(8).'].join('\n');
})();

/** The prompter of a program with no one at the keyboard: it refuses. */
const noPrompt: Prompter = {
  secret(): Promise<Secret> {
    throw new PasstoreError('policy', 'passtore-cron never asks for anything');
  },
  confirm(): Promise<boolean> {
    throw new PasstoreError('policy', 'passtore-cron never asks for anything');
  },
};

/**
 * Writes one line of output: everything passtore-cron prints goes through here, so a
 * control character from outside (a host's message, a mail subject, a file name) arrives
 * escaped and can neither drive a terminal nor forge a line of the report.
 */
function say(text: string): void {
  process.stdout.write(`${terminalSafe(text)}\n`);
}

function stdoutOutput(): Output {
  return {
    line: (text = '') => say(`${text}`),
    table: (head, rows) => {
      for (const r of rows) say(`${r.join('  ')}`);
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
      // As in the shell: the work that needs no host (renewal reminders, mail) still runs.
      const closed = await session.recoverGuard().catch((e: unknown) => {
        if (!(e instanceof PasstoreError)) throw e;
        out.line(`warning: ${e.message}; no host can be reached until it is revoked`);
        return 0;
      });
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
  const ctx = cronContext(cs.session, stopping.signal);
  let report: JobReport;
  try {
    // Nothing is deployed or used from a database whose entries or vault record were set back.
    await cs.session.verifyCurrent();
    report = await job.run(ctx, { dryRun });
  } catch (e) {
    await cs.session.audit({ action: job.audit, target: 'passtore-cron', outcome: 'failed', detail: errorMessage(e).slice(0, 300) }).catch(() => undefined);
    throw e;
  }
  // A certificate not deployed is retried (and its failure printed) by fetch and run, and
  // reported by check; an unmailed request only here, by every run.
  if (!dryRun) report.warnings.push(...outstandingWarnings({ ...(await outstanding(ctx)), undeployed: [] }));
  if (cs.lease?.lost) report.failures.push('the run lease expired while this run worked and another run took it over (raise lease_time)');
  return report;
}

function printReport(r: JobReport): number {
  for (const l of r.lines) say(`${l}`);
  for (const w of r.warnings) say(`WARNING: ${w}`);
  for (const f of r.failures) say(`FAILED: ${f}`);
  return r.failures.length > 0 ? ExitStatus.failed : ExitStatus.ok;
}

function version(): string {
  return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Runs passtore-cron with `argv`; resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  process.umask(0o077);
  let args;
  const options = { config: { type: 'string', short: 'c' }, 'dry-run': { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' } } as const;
  try {
    args = parseArgs({ args: argv, options, allowPositionals: true });
  } catch (e) {
    process.stderr.write(`passtore-cron: ${describeOptionError(e, options)}\n${CRON_USAGE}\n`);
    return ExitStatus.usage;
  }
  if (args.values.help) {
    process.stdout.write(`${CRON_USAGE}\n`);
    return ExitStatus.ok;
  }
  if (args.values.version) {
    say(`passtore-cron ${version()}`);
    return ExitStatus.ok;
  }
  const [command, ...rest] = args.positionals;
  const described = CRON_COMMANDS.find((c) => c.name === command);
  const dryRunBad = args.values['dry-run'] && !described?.options?.includes('dry-run');
  if (!command || !described || rest.length > 0 || dryRunBad) {
    const why = !command
      ? 'a command is required'
      : !described
        ? `unknown command '${command}'${didYouMean(command, COMMANDS)}`
        : rest.length > 0
          ? `${command}: unexpected argument '${rest[0]}'`
          : `${command}: --dry-run is an option of ${CRON_COMMANDS.filter((c) => c.options?.includes('dry-run')).map((c) => c.name).join(', ')} only`;
    process.stderr.write(`passtore-cron: ${why}\n${CRON_USAGE}\n`);
    return ExitStatus.usage;
  }
  let config: Config;
  try {
    config = loadConfig(args.values.config ?? undefined);
  } catch (e) {
    say(`${command === 'check' ? 'PASSTORE UNKNOWN - ' : 'passtore-cron: '}${errorMessage(e)}`);
    return command === 'check' ? 3 : exitStatusOf(e);
  }
  onStopSignals(
    (signal) => {
      stoppedBy = signal;
      say(`passtore-cron: ${signal}: stopping; what is in flight finishes, nothing new starts`);
      stopping.abort();
    },
    undefined,
    ['SIGHUP', 'SIGTERM', 'SIGINT'],
  );
  if (command === 'daemon') return daemon(config);
  const job = CRON_JOBS.find((j) => j.name === command);
  let cs: CronSession | undefined;
  try {
    // A dry run changes nothing, so it needs no lease.
    cs = await openSession(config, { lease: (job?.needs.includes('lease') ?? false) && !args.values['dry-run'] });
    // Another run holds the lease: said in one line; not a failure.
    if (!cs) return ExitStatus.ok;
  } catch (e) {
    const line = errorMessage(e);
    if (command === 'check') {
      say(`PASSTORE UNKNOWN - the vault cannot be opened: ${line}`);
      return 3;
    }
    say(`passtore-cron: ${line}`);
    const status = exitStatusOf(e);
    return status === ExitStatus.usage ? status : ExitStatus.locked;
  }
  try {
    if (!job) {
      const r = await check(cronContext(cs.session));
      say(`${r.line}`);
      return r.status;
    }
    const status = printReport(await runJob(cs, job, Boolean(args.values['dry-run'])));
    return stoppedBy ? signalStatus(stoppedBy) : status;
  } catch (e) {
    say(`${command === 'check' ? 'PASSTORE UNKNOWN - ' : 'FAILED: '}${errorMessage(e)}`);
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
        say(`${new Date().toISOString()} ${name}: starting`);
        const job = CRON_JOBS.find((j) => j.name === name);
        let cs: CronSession | undefined;
        try {
          cs = await openSession(config, { lease: job?.needs.includes('lease') ?? false });
          if (!cs) return;
          if (!job) say(`${(await check(cronContext(cs.session))).line}`);
          else printReport(await runJob(cs, job, false));
        } catch (e) {
          say(`${new Date().toISOString()} ${name}: FAILED: ${errorMessage(e)}`);
        } finally {
          if (cs) await closeSession(cs);
        }
      });
    });
    if (!job) {
      await schedule.gracefulShutdown();
      say(`passtore-cron: [schedule] ${name}: '${expr}' is not a cron expression`);
      return ExitStatus.usage;
    }
    jobs.push(job);
    say(`scheduled ${name}: ${expr} (next ${job.nextInvocation()?.toISOString?.() ?? 'never'})`);
  }
  // Stopped by a signal (main's handler): the job running is aborted and waited for.
  if (!stopping.signal.aborted) await new Promise<void>((resolve) => stopping.signal.addEventListener('abort', () => resolve(), { once: true }));
  await schedule.gracefulShutdown();
  await busy;
  return ExitStatus.ok;
}
