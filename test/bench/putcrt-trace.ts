/**
 * Benchmark helper, loaded only by putcrt.bench.ts into the real `passtore` binary for
 * its diagnostic (uncounted) runs, through NODE_OPTIONS=--import …/putcrt-trace.js. With
 * $PASSTORE_BENCH_TRACE naming a file, it appends one JSON line per event:
 *
 *   guard    each network-guard command (execFile: ip link …, iptables …), its duration
 *   connect  ssh2 Client.connect → 'ready' (TCP, key exchange, password authentication)
 *   exec     each remote command, call → channel closed ('install' = deploy's script)
 *   sftp     SFTP subsystem opened; 'write' = each writeFile
 *   session  connect → the connection's 'close'
 *
 * with the target address, so the benchmark can say where a host's time goes. It
 * changes nothing else, and does nothing without the variable.
 */
import childProcess from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';

export interface TraceEvent {
  /** Epoch milliseconds at the end of the event. */
  t: number;
  ev: 'guard' | 'connect' | 'exec' | 'sftp' | 'write' | 'session';
  host: string;
  ms: number;
  what?: string;
}

const log = process.env.PASSTORE_BENCH_TRACE;
const now = () => performance.timeOrigin + performance.now();
const emit = (e: Omit<TraceEvent, 't'>) => appendFileSync(log!, `${JSON.stringify({ t: now(), ...e })}\n`);

if (log) {
  // ---- the guard's commands ----------------------------------------------------------
  type Cb = (err: Error | null, stdout: unknown, stderr: unknown) => void;
  const original = childProcess.execFile as unknown as (...args: unknown[]) => childProcess.ChildProcess;
  const label = (file: unknown, args: unknown) => {
    const argv = [String(file), ...(Array.isArray(args) ? args.map(String) : [])];
    const d = argv.indexOf('-d');
    return { what: argv.slice(0, 4).join(' '), host: d >= 0 ? argv[d + 1]! : '' };
  };
  const timedExecFile = (...args: unknown[]): childProcess.ChildProcess => {
    const { what, host } = label(args[0], args[1]);
    const start = now();
    const cb = typeof args.at(-1) === 'function' ? (args.pop() as Cb) : undefined;
    return original(...args, (err: Error | null, stdout: unknown, stderr: unknown) => {
      emit({ ev: 'guard', host, ms: now() - start, what });
      cb?.(err, stdout, stderr);
    });
  };
  // promisify(execFile) resolves { stdout, stderr } through the custom symbol: keep that.
  (timedExecFile as unknown as Record<symbol, unknown>)[promisify.custom] = (...args: unknown[]) =>
    new Promise((resolve, reject) => {
      timedExecFile(...args, (err: (Error & Record<string, unknown>) | null, stdout: unknown, stderr: unknown) => {
        if (err) {
          err.stdout = stdout;
          err.stderr = stderr;
          reject(err);
        } else resolve({ stdout, stderr });
      });
    });
  (childProcess as unknown as { execFile: unknown }).execFile = timedExecFile;
  // The guard's batch command (iptables-restore, nft -f -) is spawned with its script on stdin.
  const originalSpawn = childProcess.spawn as unknown as (...args: unknown[]) => childProcess.ChildProcess;
  (childProcess as unknown as { spawn: unknown }).spawn = (...args: unknown[]): childProcess.ChildProcess => {
    const child = originalSpawn(...args);
    if (/iptables|nft/.test(String(args[0]))) {
      const { what } = label(args[0], args[1]);
      const start = now();
      // How many targets the batch names: its script's lines between batch_begin and batch_end.
      let lines = 0;
      const end = child.stdin!.end.bind(child.stdin!) as (...a: unknown[]) => unknown;
      (child.stdin as unknown as { end: unknown }).end = (...a: unknown[]) => {
        if (typeof a[0] === 'string') lines = Math.max(0, a[0].trim().split('\n').length - 2);
        return end(...a);
      };
      child.once('close', () => emit({ ev: 'guard', host: '', ms: now() - start, what: `${what} (${lines} targets)` }));
    }
    return child;
  };
  syncBuiltinESMExports();

  // ---- ssh2 -------------------------------------------------------------------------------
  type Traced = { __host?: string };
  const proto = ssh2.Client.prototype as unknown as Record<string, (...a: unknown[]) => unknown> & Traced;
  const connect = proto.connect!;
  proto.connect = function (this: ssh2.Client & Traced, cfg: unknown) {
    const host = String((cfg as { host?: string }).host ?? '');
    this.__host = host;
    const start = now();
    this.once('ready', () => emit({ ev: 'connect', host, ms: now() - start }));
    this.once('close', () => emit({ ev: 'session', host, ms: now() - start }));
    return connect.call(this, cfg);
  };
  const exec = proto.exec!;
  proto.exec = function (this: ssh2.Client & Traced, cmd: unknown, ...rest: unknown[]) {
    const text = String(cmd);
    const what = text.includes('sha256sum') ? 'install' : text.split(' ')[0]!.replace(/'/g, '');
    const start = now();
    const cb = rest.pop() as (err: Error | undefined, stream: ssh2.ClientChannel) => void;
    return exec.call(this, cmd, ...rest, (err: Error | undefined, stream: ssh2.ClientChannel) => {
      if (!err) stream.once('close', () => emit({ ev: 'exec', host: this.__host ?? '', ms: now() - start, what }));
      cb(err, stream);
    });
  };
  const sftp = proto.sftp!;
  proto.sftp = function (this: ssh2.Client & Traced, ...rest: unknown[]) {
    const start = now();
    const cb = rest.pop() as (err: Error | undefined, s: ssh2.SFTPWrapper) => void;
    return sftp.call(this, ...rest, (err: Error | undefined, s: ssh2.SFTPWrapper) => {
      emit({ ev: 'sftp', host: this.__host ?? '', ms: now() - start, what: 'open' });
      if (s) {
        const writeFile = s.writeFile.bind(s) as (...a: unknown[]) => void;
        (s as unknown as { writeFile: unknown }).writeFile = (...a: unknown[]) => {
          const t0 = now();
          const done = a.pop() as (e?: Error | null) => void;
          writeFile(...a, (e?: Error | null) => {
            emit({ ev: 'write', host: this.__host ?? '', ms: now() - t0, what: String(a[0]).split('/').pop() });
            done(e);
          });
        };
      }
      cb(err, s);
    });
  };
}
