/**
 * Helpers of the remote suite: a vault HOME whose guard drives the test site's vault
 * namespace, the real passtore shell run inside that namespace through a pseudo-terminal,
 * enrolling a site host (host add, add, host trust, crtreq, fixture-CA signing, getcrt),
 * and the checks made on the hosts and on the vault side's network.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { makeHome, pause, plain, PtySession, type Home } from '../support/pty.js';
import { TestSite, type HostOptions, type TestHost } from '../support/site.js';
import { FixtureCa } from '../x509/fixture-ca.js';

const run = promisify(execFile);

export const PASSPHRASE = 'Remote suite passphrase 4711';
export const CRT_DIR = '/etc/grid-security';

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** A HOME whose config points the guard at the site's vault namespace. */
export function vaultHome(site: TestSite): Home {
  return makeHome([`domain = ${site.domain}`, ...site.networkConfig()]);
}

/** Where passtore keeps its data (and the guard its marker) in that HOME. */
export function dataDirOf(home: Home): string {
  return join(home.dir, '.local', 'share', 'passtore');
}

/** The real passtore shell, run inside the vault namespace. */
export function shellIn(site: TestSite, home: Home, env: Record<string, string> = {}): PtySession {
  return new PtySession([], { ...home.env, ...env }, { prefix: ['ip', 'netns', 'exec', site.vaultNs] });
}

/** Starts a shell on a new vault (creating it). */
export async function createVault(site: TestSite, home: Home): Promise<PtySession> {
  const sh = shellIn(site, home);
  await sh.createVault(PASSPHRASE);
  return sh;
}

/**
 * Starts a shell on the existing vault and unlocks it; returns the shell and what it
 * printed up to its first prompt (guard recovery, reconcile lines).
 */
export async function openVault(site: TestSite, home: Home, env: Record<string, string> = {}): Promise<{ sh: PtySession; banner: string }> {
  const sh = shellIn(site, home, env);
  await sh.expect(/Passphrase for [^\n]*: $/, { timeoutMs: 20_000 });
  await pause(30);
  sh.line(PASSPHRASE);
  const end = await sh.expect(/\npasstore> $/, { timeoutMs: 60_000 });
  return { sh, banner: plain(sh.transcript).slice(0, end) };
}

/**
 * Opens the vault in a shell that stops at fault point `step` (PASSTORE_CRASH_AT), runs
 * `line` and waits for the shell to die there.
 */
export async function runUntilCrash(site: TestSite, home: Home, step: string, line: string): Promise<void> {
  const { sh } = await openVault(site, home, { PASSTORE_CRASH_AT: step });
  sh.line(line);
  await sh.exited(30_000);
}

/** What most remote suites start in their `before`: the site, the fixture CA, a vault home, a directory for requests, and the shell that created the vault. */
export interface SuiteParts {
  site: TestSite;
  ca: FixtureCa;
  home: Home;
  reqDir: string;
  sh: PtySession;
}

/**
 * Starts a site of `hosts` hosts, the fixture CA, a vault home (`home`, given the site;
 * default `vaultHome`), a request directory and the shell that creates the vault. A
 * failure part-way stops and removes what was started before it is thrown.
 */
export async function startSuite(hosts: number, options: { hosts?: Record<number, HostOptions>; home?: (site: TestSite) => Home } = {}): Promise<SuiteParts> {
  const parts: Partial<SuiteParts> = {};
  try {
    const site = (parts.site = await TestSite.start(hosts, options.hosts));
    parts.ca = await FixtureCa.create();
    parts.reqDir = mkdtempSync(join(tmpdir(), 'passtore-reqs-'));
    const home = (parts.home = options.home ? options.home(site) : vaultHome(site));
    parts.sh = await createVault(site, home);
    return parts as SuiteParts;
  } catch (e) {
    await stopSuite(parts);
    throw e;
  }
}

/** Stops and removes what `startSuite` made (each part may be missing, or the shell already closed). */
export async function stopSuite(parts: Partial<SuiteParts>): Promise<void> {
  await closeShell(parts.sh);
  await parts.site?.stop();
  parts.home?.remove();
  parts.ca?.remove();
  if (parts.reqDir) rmSync(parts.reqDir, { recursive: true, force: true });
}

/** A digest of everything the vault stores but its audit trail: what a cancel must leave as it was. */
export function storedState(home: Home): string {
  const db = new Database(join(dataDirOf(home), 'vault.db'), { readonly: true });
  try {
    const parts = ['hosts', 'entries', 'entry_history', 'private_keys', 'certificates', 'cert_requests'].map((t) => `${t}: ${JSON.stringify(db.prepare(`SELECT * FROM ${t} ORDER BY rowid`).all())}`);
    return sha256(parts.join('\n'));
  } finally {
    db.close();
  }
}

/** A TCP listener on port 22 of the address given that accepts, reads and never answers. */
const SILENT = "const s = require('net').createServer((c) => { console.log('open'); c.resume(); c.on('close', () => console.log('close')); }); s.listen(22, process.argv[1], () => console.log('listening'));";

/**
 * Puts in `h`'s sshd's place a listener that accepts and never says a word (an SSH connect
 * would wait 15 s for its banner). `seen(word)` waits up to `ms` for it to say `open` or
 * `close` of a connection; `stop()` ends it and starts sshd again.
 */
export async function silentHost(site: TestSite, h: TestHost): Promise<{ seen(word: 'open' | 'close', ms: number, every?: number): Promise<boolean>; stop(): Promise<void> }> {
  await site.stopSshd(h);
  const silent = spawn('ip', ['netns', 'exec', h.ns, process.execPath, '-e', SILENT, h.realAddress ?? h.address], { stdio: ['ignore', 'pipe', 'inherit'] });
  let said = '';
  silent.stdout!.on('data', (d: Buffer) => (said += d.toString()));
  const seen = async (word: string, ms: number, every = 50) => {
    const until = Date.now() + ms;
    while (!said.includes(word) && Date.now() < until) await pause(every);
    return said.includes(word);
  };
  const stop = async () => {
    silent.kill();
    await new Promise((r) => (silent.exitCode !== null || silent.signalCode !== null ? r(null) : silent.once('exit', r)));
    await site.startSshd(h);
  };
  if (!(await seen('listening', 10_000))) {
    await stop();
    throw new Error(`the silent listener on ${h.name} did not start`);
  }
  return { seen, stop };
}

/** Leaves the shell (exit), or kills it if it does not go. */
export async function closeShell(sh: PtySession | undefined): Promise<void> {
  if (!sh || sh.exitCode !== undefined) return;
  try {
    sh.line('exit');
    await sh.exited(5_000);
  } catch {
    sh.kill();
  }
}

/** Types a command, answers its prompts, and returns its output (up to the next prompt). */
export function cmd(sh: PtySession, line: string, ...answers: string[]): Promise<string> {
  return sh.command(line, ...answers);
}

/** The password `get` shows for an entry (the reveal is cleared with a key press). */
export async function reveal(sh: PtySession, spec: string): Promise<string> {
  const start = sh.mark;
  sh.line(`get ${spec}`);
  const end = await sh.expect(/\(any key or \d+ s clears it\)/, { from: start });
  const shown = plain(sh.transcript).slice(start, end);
  const m = /:ssh {2}(\S+) {3}\(any key/.exec(shown);
  assert.ok(m, `get ${spec} shows a password: ${shown}`);
  await pause(100);
  sh.write('x');
  await sh.expect(/password shown and cleared\r?\n.*passtore> $/, { from: start });
  return m[1]!;
}

/** The vault side's network is closed: link down, no rule beyond the site's own. */
export async function assertGuardClosed(site: TestSite, after: string): Promise<void> {
  const state = await site.vaultState();
  assert.equal(state.linkUp, false, `the vault link is down after ${after}`);
  assert.deepEqual(state.rules, [], `no OUTPUT rule is left after ${after}`);
}

/** Asserts a command's output holds one error line, and no trace (returns the line). */
export function oneError(out: string, pattern: RegExp): string {
  const lines = out.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('passtore>'));
  const errors = lines.filter((l) => /^error: /.test(l));
  assert.equal(errors.length, 1, `one error line in: ${out}`);
  assert.ok(!lines.some((l) => /^at |node:internal|\w+Error: /.test(l)), `no stack trace in: ${out}`);
  assert.match(errors[0]!, pattern);
  return errors[0]!;
}

/**
 * Enrols a site host in the vault: host add (with its address), add (its root password),
 * host trust (answering y after the fingerprint was shown), crtreq --out, signing by the
 * fixture CA, getcrt. Returns the request and certificate files.
 */
export async function enrol(sh: PtySession, site: TestSite, h: TestHost, ca: FixtureCa, dir: string): Promise<{ request: string; cert: string }> {
  assert.match(await cmd(sh, `host add ${h.name} --address ${h.address}`), new RegExp(`added host ${h.fqdn}`));
  assert.match(await cmd(sh, `add ${h.name}`, h.rootPassword, h.rootPassword), new RegExp(`stored root@${h.fqdn}:ssh`));
  await trust(sh, site, h);
  const { request, cert } = await certify(sh, h, ca, dir);
  return { request, cert };
}

/** host trust HOST, checking the fingerprint shown is the host's own, answering y. */
export async function trust(sh: PtySession, site: TestSite, h: TestHost): Promise<void> {
  const out = await cmd(sh, `host trust ${h.name}`, 'y');
  const fp = await fingerprintOf(site, h);
  assert.ok(out.includes(fp), `host trust shows the host's fingerprint ${fp}: ${out}`);
  assert.match(out, new RegExp(`pinned ${fp.replace(/[+/]/g, '\\$&')} for ${h.fqdn}`));
  await assertGuardClosed(site, `host trust ${h.name}`);
}

/** A new key and request (crtreq --out), signed by the fixture CA and stored (getcrt). */
export async function certify(sh: PtySession, h: TestHost, ca: FixtureCa, dir: string): Promise<{ request: string; cert: string }> {
  mkdirSync(dir, { recursive: true });
  assert.match(await cmd(sh, `crtreq ${h.name} --out ${dir}`), new RegExp(h.fqdn));
  const request = join(dir, `${h.fqdn}.req`);
  const cert = await ca.sign(request, { out: ca.path(`${h.name}.crt`) });
  assert.match(await cmd(sh, `getcrt ${cert}`), new RegExp(`stored the certificate for ${h.fqdn}`));
  return { request, cert };
}

/** The SHA-256 fingerprint of a host's SSH key, as ssh-keygen -l shows it. */
export async function fingerprintOf(site: TestSite, h: TestHost): Promise<string> {
  const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(site.dir, h.name, 'keys', 'host_ed25519.pub')]);
  return stdout.split(' ')[1]!;
}

/** Gives a host a new SSH host key (as a reinstall would) and restarts its sshd. */
export async function rekeyHost(site: TestSite, h: TestHost): Promise<void> {
  await site.stopSshd(h);
  const key = join(site.dir, h.name, 'keys', 'host_ed25519');
  await run('rm', ['-f', key, `${key}.pub`]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${h.name}-reinstalled`, '-f', key]);
  await site.startSshd(h);
}

/**
 * Runs a command on a test host. The command first reads its (empty) standard input to
 * the end: site.onHost writes to it, and a command that exits without reading it would
 * make that write fail with EPIPE, an unhandled error in the test process.
 */
export function onHost(site: TestSite, h: TestHost, argv: string[], input?: string): Promise<string> {
  if (input !== undefined) return site.onHost(h, argv, input);
  return site.onHost(h, ['sh', '-c', 'cat >/dev/null; exec "$@"', 'sh', ...argv]);
}

/** What the host holds in its certificate directory: name → { sha256, mode, owner }. */
export async function certDir(site: TestSite, h: TestHost): Promise<Map<string, { sha256: string; mode: string; owner: string }>> {
  const out = await onHost(site, h, ['sh', '-c', 'cd "$1" 2>/dev/null || exit 0; for f in * .[!.]*; do [ -f "$f" ] || continue; printf "%s %s %s\\n" "$(sha256sum < "$f" | cut -d" " -f1)" "$(stat -c "%a %U" "$f")" "$f"; done', 'sh', CRT_DIR]);
  const files = new Map<string, { sha256: string; mode: string; owner: string }>();
  for (const line of out.split('\n').filter(Boolean)) {
    const [hash, mode, owner, name] = line.split(' ') as [string, string, string, string];
    files.set(name, { sha256: hash, mode, owner });
  }
  return files;
}

/** The SHA-256 of a public key (SubjectPublicKeyInfo DER) held in a PEM file on a host. */
export async function spkiOnHost(site: TestSite, h: TestHost, file: string, kind: 'key' | 'cert'): Promise<string> {
  const script = kind === 'key' ? 'openssl pkey -in "$1" -pubout -outform DER | sha256sum' : 'openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum';
  return (await onHost(site, h, ['sh', '-c', `set -e; ${script}`, 'sh', file])).split(' ')[0]!;
}

/** The SHA-256 of the public key in a local request or certificate file. */
export async function spkiOfFile(file: string, kind: 'req' | 'cert'): Promise<string> {
  const { stdout: pub } = await run('openssl', kind === 'req' ? ['req', '-in', file, '-noout', '-pubkey'] : ['x509', '-in', file, '-noout', '-pubkey']);
  const der = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn('openssl', ['pkey', '-pubin', '-outform', 'DER'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`openssl pkey: status ${code}`))));
    child.stdin.end(pub);
  });
  return sha256(der);
}

/** The SHA-256 of a certificate file's DER (its fingerprint). */
export async function certFingerprint(file: string): Promise<string> {
  const { stdout } = await run('openssl', ['x509', '-in', file, '-noout', '-fingerprint', '-sha256']);
  return stdout.split('=')[1]!.trim().replace(/:/g, '').toLowerCase();
}

/** Whether the host's /etc/shadow holds `password` for `user` (crypt comparison on the host). */
export async function shadowAccepts(site: TestSite, h: TestHost, password: string, user = 'root'): Promise<boolean> {
  const script = [
    'my $pw = <STDIN>; chomp $pw;',
    'open(my $f, "<", "/etc/shadow") or die "shadow: $!";',
    'while (<$f>) { my @p = split /:/; if ($p[0] eq $ARGV[0]) { print((crypt($pw, $p[1]) eq $p[1]) ? "yes\\n" : "no\\n"); exit 0; } }',
    'die "no such user\\n";',
  ].join(' ');
  const out = await site.onHost(h, ['perl', '-e', script, user], `${password}\n`);
  return out.trim() === 'yes';
}

/** The compiled helper scripts of this suite. */
export const SCRIPT = (name: string): string => fileURLToPath(new URL(`./${name}.js`, import.meta.url));

/** Runs a helper script inside the vault namespace; returns its stdout, exit code and signal. */
export function runInVault(site: TestSite, script: string, args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', site.vaultNs, process.execPath, SCRIPT(script), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not finish in ${timeoutMs} ms: ${stdout}${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Which of `passwords` sshd on the host accepts for `user`: real SSH logins from the vault
 * namespace, through a guard of the script's own (its marker in `stateDir`).
 */
export async function sshAccepts(site: TestSite, home: Home, h: TestHost, passwords: string[], stateDir: string, user = 'root'): Promise<boolean[]> {
  const r = await runInVault(site, 'ssh-login', [home.configFile, stateDir, h.address, user], { input: passwords.map((p) => `${p}\n`).join('') });
  assert.equal(r.code, 0, `ssh-login failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as boolean[];
}

/**
 * Makes a host's remote commands get only the first `bytes` bytes of their standard input
 * (a deploy's files go there): a `ForceCommand` wrapper passes that many bytes on to the
 * command the client asked for, then either ends its input (`input`: the command sees the
 * end of its input, the connection stays) or kills this connection's sshd processes
 * (`connection`: the host drops the connection mid-transfer). Restarts the host's sshd
 * with it; `restoreInput` undoes it.
 */
export async function breakInputAfter(site: TestSite, h: TestHost, bytes: number, how: 'input' | 'connection'): Promise<void> {
  const wrapper = join(site.dir, h.name, `input-${how}-${bytes}.sh`);
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      '# $1: how many bytes of input to pass on; $2: input or connection; $3: the sshd listener pid file',
      '# dd bs=1 passes each byte on at once (head -c and larger dd blocks hold them back).',
      '# The wrapper\'s own errors go to a log, the command\'s to the client as usual.',
      'exec 3>&2 2>>"$0.log"',
      'listener=$(cat "$3")',
      'start=$PPID',
      '(',
      '  dd bs=1 count="$1" status=none',
      '  if [ "$2" = connection ]; then',
      '    pids=""',
      '    pid=$start',
      '    # This connection\'s own sshd processes: the ancestors up to the listener.',
      '    while [ "$pid" -gt 1 ] && [ "$pid" != "$listener" ]; do',
      '      case "$(cat /proc/$pid/comm)" in sshd*) pids="$pids $pid";; esac',
      "      pid=$(sed -e 's/^.*) //' /proc/$pid/stat | cut -d' ' -f2)",
      '    done',
      '    [ -n "$pids" ] && kill -9 $pids',
      '  fi',
      ') | sh -c "$SSH_ORIGINAL_COMMAND" 2>&3',
      'status=$?',
      'echo "command: status $status" >&2',
      'exit $status',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  await setForceCommand(site, h, `${wrapper} ${bytes} ${how} ${join(site.dir, h.name, 'sshd.pid')}`);
}

/** Puts the host's normal remote commands back. */
export async function restoreInput(site: TestSite, h: TestHost): Promise<void> {
  await setForceCommand(site, h, undefined);
}

async function setForceCommand(site: TestSite, h: TestHost, command: string | undefined): Promise<void> {
  const file = join(site.dir, h.name, 'sshd_config');
  const text = readFileSync(file, 'utf8').replace(/^ForceCommand .*\n/m, '') + (command ? `ForceCommand ${command}\n` : '');
  await site.stopSshd(h);
  writeFileSync(file, text);
  await site.startSshd(h);
}

/**
 * Slows a host's SFTP: its `Subsystem sftp` becomes OpenSSH's sftp-server with what the
 * client reads (file data, answers) passed on `chunk` bytes every 0.2 s, and what the
 * client sends (requests, written data) taken `chunk` bytes every 0.2 s. A file's bytes
 * reach the client at 5 × `chunk` bytes a second, a written file's reach the host as
 * slowly: a transfer stays in progress for as long as a test needs; `startDelayS` makes
 * the subsystem wait that long before it starts. Returns how many bytes
 * have passed each way so far. When the client closes the channel, each side of the
 * slowing sees its pipe end within 0.2 s and ends; nothing of it outlives the connection.
 * Restarts the host's sshd with it; `restoreSftp` undoes it.
 */
export async function slowSftp(site: TestSite, h: TestHost, chunk: number, options: { startDelayS?: number } = {}): Promise<() => { out: number; in: number }> {
  const base = join(site.dir, h.name, 'slow-sftp');
  // One perl loop per direction: read at most CHUNK bytes, pass them on whole, count them
  // in a file (written then renamed, so a reader sees a whole number), wait 0.2 s.
  const slow = `perl -e '$| = 1; my ($c, $f) = @ARGV; my $n = 0; binmode STDIN; binmode STDOUT; while (1) { my $r = sysread(STDIN, my $b, $c); last unless $r; for (my $o = 0; $o < $r;) { my $w = syswrite(STDOUT, $b, $r - $o, $o); exit 0 unless $w; $o += $w; } $n += $r; open(my $h, ">", "$f.tmp") or die; print $h $n; close $h; rename("$f.tmp", $f); select(undef, undef, undef, 0.2); }'`;
  writeFileSync(
    `${base}.sh`,
    [
      '#!/bin/sh',
      `# ${h.name}'s SFTP subsystem, slowed both ways (test/remote/helpers.ts, slowSftp).`,
      // A slow start: the client waits for the SFTP version that long (its sftp() call).
      ...(options.startDelayS ? [`sleep ${options.startDelayS}`] : []),
      `${slow} ${chunk} "$0.in" | /usr/lib/openssh/sftp-server | ${slow} ${chunk} "$0.out"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  for (const way of ['in', 'out']) rmSync(`${base}.sh.${way}`, { force: true });
  await setSubsystem(site, h, `${base}.sh`);
  const count = (way: string) => {
    try {
      return Number(readFileSync(`${base}.sh.${way}`, 'utf8')) || 0;
    } catch {
      return 0;
    }
  };
  return () => ({ out: count('out'), in: count('in') });
}

/** Puts the host's own SFTP (internal-sftp) back. */
export async function restoreSftp(site: TestSite, h: TestHost): Promise<void> {
  await setSubsystem(site, h, 'internal-sftp');
}

async function setSubsystem(site: TestSite, h: TestHost, command: string): Promise<void> {
  const file = join(site.dir, h.name, 'sshd_config');
  const text = readFileSync(file, 'utf8').replace(/^Subsystem sftp .*$/m, `Subsystem sftp ${command}`);
  await site.stopSshd(h);
  writeFileSync(file, text);
  await site.startSshd(h);
}

/**
 * What a host runs for its SSH connections: the pids and command lines of every process
 * below its sshd listener (each connection's sshd processes and whatever they run), and
 * of any process left running from the host's directory (slowSftp's wrapper and its
 * loops, should sshd have left them behind). Empty when no SSH session is open on the host.
 */
export function sshSessionsOn(site: TestSite, h: TestHost): string[] {
  const listener = Number(readFileSync(join(site.dir, h.name, 'sshd.pid'), 'utf8').trim());
  const parent = new Map<number, number>();
  const cmdline = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      cmdline.set(Number(name), readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim());
    } catch {
      // gone meanwhile
    }
  }
  const below = (pid: number): boolean => {
    for (let p = parent.get(pid), hops = 0; p !== undefined && p > 1 && hops < 64; p = parent.get(p), hops++) if (p === listener) return true;
    return false;
  };
  const hostDir = `${join(site.dir, h.name)}/`;
  const fromHostDir = (pid: number): boolean => pid !== listener && cmdline.get(pid)!.includes(hostDir);
  return [...parent.keys()].filter((pid) => below(pid) || fromHostDir(pid)).map((pid) => `${pid} ${cmdline.get(pid)}`);
}
