#!/usr/bin/env node
/**
 * `passtore`: the interactive shell. It runs only on a terminal (automation belongs to
 * passtore-cron); `--help` and `--version` work anywhere and reveal nothing.
 */
import { terminalSafe } from '../names.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { ExitStatus, exitStatusOf, errorMessage, PasstoreError } from '../errors.js';
import { Session } from '../session.js';
import { runShell, type ShellControl } from '../shell/shell.js';
import { onStopSignals, signalStatus } from '../cancel.js';
import { Terminal } from '../shell/terminal.js';
import { restoreFromBackup } from '../restore.js';
import { parseOperatorName } from '../names.js';
import { describeOptionError } from '../option-errors.js';
import { didYouMean } from '../suggest.js';
import { forbidCoreDumps } from '../no-core.js';

const USAGE = `usage: passtore [--config FILE] [--operator NAME] [init]
       passtore [--config FILE] [--operator NAME] restore DIR
       passtore --help | --version

The vault for the root passwords and host certificates of a site's hosts.
Opens the passtore> shell (a terminal is required); 'init' creates a vault.
Type 'help' at the prompt for the commands. See passtore(1).`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The signal that stopped the shell, if one did. */
let stoppedBy: NodeJS.Signals | undefined;

async function main(): Promise<number> {
  process.umask(0o077);
  // Before anything secret is in memory: no core dump may hold a key or a secret.
  try {
    forbidCoreDumps();
  } catch (e) {
    process.stderr.write(`passtore: ${errorMessage(e)}\n`);
    return ExitStatus.usage;
  }
  let args;
  const options = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'V' },
    config: { type: 'string', short: 'c' },
    operator: { type: 'string', short: 'o' },
  } as const;
  try {
    args = parseArgs({ options, allowPositionals: true });
  } catch (e) {
    process.stderr.write(`passtore: ${describeOptionError(e, options)}\n${USAGE}\n`);
    return ExitStatus.usage;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return ExitStatus.ok;
  }
  if (args.values.version) {
    process.stdout.write(`passtore ${version()}\n`);
    return ExitStatus.ok;
  }
  const [verb, ...extra] = args.positionals;
  const restoreDir = verb === 'restore' && extra.length === 1 ? extra.pop() : undefined;
  if ((verb !== undefined && verb !== 'init' && !restoreDir) || extra.length > 0) {
    const word = verb === 'init' || (verb === 'restore' && extra.length > 1) ? extra[verb === 'init' ? 0 : 1]! : verb!;
    const why = verb === 'restore' && extra.length === 0 ? 'restore: missing DIR' : `unexpected argument '${word}'${word === verb ? didYouMean(word, ['init', 'restore']) : ''}`;
    process.stderr.write(`passtore: ${why}\n${USAGE}\n`);
    return ExitStatus.usage;
  }
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    process.stderr.write('passtore: interactive by design: standard input and output must be a terminal (automation belongs to passtore-cron)\n');
    return ExitStatus.usage;
  }

  let session: Session | undefined;
  // SIGHUP (the terminal closed) or SIGTERM: the running command is cancelled and waited
  // for, so that its network guard is closed (rules revoked, link down) before the exit.
  const shell: ShellControl = {};
  let terminal: Terminal | undefined;
  onStopSignals((signal) => {
    stoppedBy = signal;
    // A terminal that hung up fails reads and writes: nothing more is shown, nothing crashes.
    for (const stream of [process.stdin, process.stdout, process.stderr]) stream.on('error', () => undefined);
    // A command waiting at a prompt (a no-echo password, y/N) ends as at Ctrl-C, not after the grace time.
    terminal?.stopPrompts();
    // Before the shell runs (unlocking, reconciling) nothing waits: the exit is at once, and
    // the next start closes a guard left open, as after a crash.
    if (shell.stop) shell.stop();
    else process.exit(signalStatus(signal));
  });
  try {
    const config = loadConfig(args.values.config ?? undefined);
    const tty = new Terminal(process.stdin, process.stdout, config.revealTimeout);
    terminal = tty;
    if (restoreDir) {
      await restoreFromBackup(config, restoreDir, parseOperatorName(args.values.operator ?? config.operator), tty, tty);
      return ExitStatus.ok;
    }
    session = await Session.open({ config, prompt: tty, out: tty, terminal: true, operator: args.values.operator });
    // A rule that cannot be revoked keeps the network down (the guard refuses `up` until it
    // is), not the vault closed: its passwords are what the operator may need to mend it.
    const closed = await session.recoverGuard().catch((e: unknown) => {
      if (!(e instanceof PasstoreError)) throw e;
      tty.line(`warning: ${e.message}; no host can be reached until it is revoked`);
      return 0;
    });
    if (closed > 0) tty.line(`closed the network guard an earlier run left open (${closed} target${closed === 1 ? '' : 's'})`);
    if (!session.hasVault) {
      if (verb !== 'init' && !(await tty.confirm(`No vault in ${session.store.location}. Create one now?`))) {
        tty.line('no vault created');
        return ExitStatus.failed;
      }
      await session.createVault().catch((e: unknown) => {
        throw e instanceof PasstoreError && e.code === 'cancelled' ? new PasstoreError('cancelled', 'cancelled; no vault was created') : e;
      });
      tty.line(`created a vault in ${session.store.location} for operator ${session.operator}`);
    } else if (verb === 'init') {
      tty.line(`a vault already exists in ${session.store.location}`);
      return ExitStatus.failed;
    } else {
      await session.unlock();
      const failed = session.failedUnlocksBefore;
      if (failed > 0) tty.line(`${failed} failed unlock${failed === 1 ? '' : 's'} for ${session.operator} since the last one (see audit)`);
      if ((await session.store.pendingEntries()).length > 0) {
        tty.line('password changes were interrupted; reconciling with the hosts:');
        for (const line of await session.reconcile()) tty.line(`  ${line.text}`);
      }
    }
    await runShell(session, tty, shell);
    return stoppedBy ? signalStatus(stoppedBy) : ExitStatus.ok;
  } catch (e) {
    const status = exitStatusOf(e);
    // Status 3 is for scripts and monitoring; the operator is told it in words too.
    process.stderr.write(`passtore: ${terminalSafe(errorMessage(e))}${status === ExitStatus.locked ? '; the vault stays locked (exit status 3)' : ''}\n`);
    return status;
  } finally {
    await session?.close().catch(() => undefined);
  }
}

main().then((status) => {
  process.exitCode = status;
  // The REPL and the pool may hold the loop open; exit once what was written is flushed.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(status)));
});
