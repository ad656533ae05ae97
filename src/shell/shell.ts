/**
 * The `passtore>` shell: node:repl with our own eval (each line goes to the session),
 * our completer, no dot-commands, no persistent history and no preview. The terminal
 * does the prompting; the session does everything else.
 */
import { terminalSafe } from '../names.js';
import repl from 'node:repl';
import type { REPLServer } from 'node:repl';
import { Completer } from './completer.js';
import type { Session } from '../session.js';
import type { Terminal } from './terminal.js';

/** What the program around the shell may do to it while it runs. */
export interface ShellControl {
  /**
   * Set by runShell: cancels the running command (as Ctrl-C does), and closes the shell
   * once that command has finished (SIGHUP, SIGTERM).
   */
  stop?: () => void;
}

/**
 * Runs the shell until `exit` or end of input; resolves when it has closed, never while a
 * command still runs (one left running when the input ends is cancelled and waited for,
 * so that its network guard is closed before the program exits).
 */
export function runShell(session: Session, terminal: Terminal, control: ShellControl = {}): Promise<void> {
  const completer = new Completer(session);
  let server: REPLServer;
  /** The command line running now, whose signal Ctrl-C aborts. */
  let running: AbortController | undefined;
  /** That command's end (it never rejects: execute prints its errors). */
  let current: Promise<unknown> | undefined;
  const complete = (line: string, callback: (err: Error | null, result: [string[], string]) => void): void => {
    completer.complete(line).then(
      (r) => {
        if (r.kind === 'complete') {
          callback(null, [r.completions, r.token]);
          return;
        }
        // A pattern: show what it matches and leave the line as typed.
        callback(null, [[], '']);
        const list = r.matches.length ? r.matches.join('  ') + (r.more ? '  …' : '') : '(no host matches)';
        terminal.output.write(`\n${terminalSafe(list)}\n`);
        server.displayPrompt(true);
      },
      () => callback(null, [[], line]),
    );
  };

  server = repl.start({
    prompt: 'passtore> ',
    input: terminal.input,
    output: terminal.output,
    terminal: true,
    preview: false,
    ignoreUndefined: true,
    useGlobal: false,
    completer: complete,
    eval: (cmd, _context, _file, callback) => {
      const controller = new AbortController();
      running = controller;
      current = session.execute(cmd.trim(), { signal: controller.signal }).then(
        () => {
          running = undefined;
          current = undefined;
          callback(null, undefined);
          if (session.exitRequested) server.close();
        },
        (e) => {
          running = undefined;
          current = undefined;
          callback(e as Error, undefined);
        },
      );
    },
  });
  // Ctrl-C while a command runs cancels that command (its signal), and nothing else: the
  // REPL's own handler (clear the line; a second Ctrl-C closes the shell) is kept for the
  // prompt, where it acts as before. A prompt inside a command takes its keys itself, so
  // its own Ctrl-C never gets here.
  const replSigint = server.listeners('SIGINT') as Array<(...args: unknown[]) => void>;
  server.removeAllListeners('SIGINT');
  server.on('SIGINT', (...args: unknown[]) => {
    if (running) {
      running.abort();
      return;
    }
    for (const listener of replSigint) listener.apply(server, args);
  });
  // No .load, .save, .editor: every line goes through the session's policy.
  const commands = server.commands as Record<string, unknown>;
  for (const name of Object.keys(commands)) delete commands[name];

  const idleMs = session.config.idleLock * 60_000;
  const idleTimer = idleMs
    ? setInterval(() => {
        if (session.unlocked && terminal.idleFor() >= idleMs) {
          session.lock();
          terminal.output.write(`\n[vault locked after ${session.config.idleLock} minutes without input]\n`);
          server.displayPrompt(true);
        }
      }, Math.min(15_000, idleMs)).unref()
    : undefined;

  control.stop = () => {
    running?.abort();
    void (current ?? Promise.resolve()).finally(() => server.close());
  };

  return new Promise((resolve) => {
    server.on('exit', () => {
      if (idleTimer) clearInterval(idleTimer);
      // The input ended (the terminal hung up) while a command ran: cancel it and wait.
      running?.abort();
      void (current ?? Promise.resolve()).finally(() => {
        session.lock();
        resolve();
      });
    });
  });
}
