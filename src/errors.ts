/**
 * Errors with codes. Every error the operator sees is a PasstoreError: a code, an
 * exit status and one line of text that never holds a secret. `formatError` is the one
 * place that turns any thrown value into that line, for the shell and for cron alike.
 */

/** Exit statuses shared by `passtore` and `passtore-cron` (SPEC section 8). */
export const ExitStatus = {
  ok: 0,
  failed: 1,
  usage: 2,
  locked: 3,
} as const;
export type ExitStatus = (typeof ExitStatus)[keyof typeof ExitStatus];

/** Error codes; each names one kind of failure an operator can act on. */
export type ErrorCode =
  | 'usage'
  | 'bad-name'
  | 'config'
  | 'not-interactive'
  | 'not-found'
  | 'exists'
  | 'locked'
  | 'bad-passphrase'
  | 'integrity'
  | 'policy'
  | 'storage'
  | 'cancelled'
  | 'audit'
  | 'io'
  | 'mismatch'
  | 'script'
  | 'partial'
  | 'auth';

const exitFor: Record<ErrorCode, ExitStatus> = {
  usage: ExitStatus.usage,
  'bad-name': ExitStatus.usage,
  config: ExitStatus.usage,
  'not-interactive': ExitStatus.usage,
  'not-found': ExitStatus.failed,
  exists: ExitStatus.failed,
  locked: ExitStatus.locked,
  'bad-passphrase': ExitStatus.locked,
  integrity: ExitStatus.failed,
  policy: ExitStatus.failed,
  storage: ExitStatus.failed,
  cancelled: ExitStatus.failed,
  audit: ExitStatus.failed,
  io: ExitStatus.failed,
  mismatch: ExitStatus.failed,
  script: ExitStatus.failed,
  partial: ExitStatus.failed,
  auth: ExitStatus.failed,
};

/** The one error type passtore throws on purpose. `message` is one line, secret-free. */
export class PasstoreError extends Error {
  readonly code: ErrorCode;
  readonly exitStatus: ExitStatus;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(oneLine(message), options);
    this.name = 'PasstoreError';
    this.code = code;
    this.exitStatus = exitFor[code];
  }
}

/** Shorthand constructors for the common cases. */
export const usageError = (message: string) => new PasstoreError('usage', message);
export const notFound = (message: string) => new PasstoreError('not-found', message);

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** Where the detail of unexpected errors goes; set by the programs, never holds secrets. */
let debugSink: ((detail: string) => void) | undefined;

/** Sets the debug log writer (the shell's and cron's `--debug` log). */
export function setDebugSink(sink: ((detail: string) => void) | undefined): void {
  debugSink = sink;
}

/**
 * Turns any thrown value into one line for the operator, without a prefix: the one error
 * formatter, which every report (shell, passtore-cron, result tables) builds on. An
 * unexpected error shows only its class and a generic message; its stack goes to the
 * debug log, never to the screen.
 */
export function errorMessage(err: unknown): string {
  if (err instanceof PasstoreError) return err.message;
  const name = err instanceof Error ? err.name : typeof err;
  if (debugSink && err instanceof Error) debugSink(err.stack ?? String(err.message));
  const code = (err as { code?: unknown } | null)?.code;
  const hint = typeof code === 'string' && /^[A-Z_]+$/.test(code) ? ` (${code})` : '';
  return `internal ${name}${hint}; nothing was changed by the failed step`;
}

/** The shell's display of an error on a line of its own: `error: ` and the message. */
export function formatError(err: unknown): string {
  return `error: ${errorMessage(err)}`;
}

/** The exit status an error calls for. */
export function exitStatusOf(err: unknown): ExitStatus {
  return err instanceof PasstoreError ? err.exitStatus : ExitStatus.failed;
}
