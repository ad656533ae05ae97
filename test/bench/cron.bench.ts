/**
 * Benchmark of `passtore-cron`, the headless mode. Not a test: build with `npx tsc -p .`,
 * run `node dist/test/bench/cron.bench.js` as root (part 2 builds network namespaces).
 * Prints medians, each target with its ratio, and a SUMMARY line.
 *
 * 1. `passtore-cron renew --dry-run` over a vault of 10,000 current certificates, 500 of
 *    them within crt_ttl (30 days) of expiry: the real binary (dist/src/bin/passtore-cron.js)
 *    started with async execFile, a config file (db = sqlite:…, keyfile = … made by
 *    `keyfile create`) and only PATH, HOME, XDG_DATA_HOME, PASSTORE_SCRYPT_LOG_N=14 in its
 *    environment; one untimed warm-up, then the median of RUNS.binary runs, each checked
 *    for exit 0 and for "would renew" lines only. All 500 lines are checked on runs with
 *    stdout going to a file (RUNS.toFile, timed too); through execFile's pipe a report cut
 *    short (as before src/bin/passtore-cron.ts waited for its output to drain before
 *    exiting) is printed as a finding. Beside it, in this process on
 *    the same vault:
 *    Session.open, unlockWithKeyfile, renew(session, { dryRun: true }) itself, and the
 *    expiringCertificates query renew makes, plus bare `node` start and `passtore-cron --version` (module loading), to
 *    separate process start from the scan.
 *    Against the original tool's way: `openssl x509 -noout -enddate -in FILE` for each of
 *    the 10,000 certificates exported from the vault (store.currentCertificates, one PEM
 *    file per host), as a shell loop (one `sh` running the loop: one fork+exec of openssl
 *    per file, as a script does). It is timed on a 1,000-file sample (the first 1,000
 *    hosts, 50 of them due) and extrapolated linearly; BENCH_FULL_BASELINE=1 runs all
 *    10,000. Target: the binary at least 100× faster than the loop.
 *    Fixtures (cron-fixtures.ts): 10,000 EC P-256 key + certificate pairs made once into
 *    /var/tmp/passtore-bench-cron and reused. They are imported with `importcert DIR`
 *    (tv.run on a fresh SQLite vault; importcert is itself one transaction, so the Store
 *    API route would save no transaction), which took 8 s here (2026-12-04): the populated
 *    vault and its key file are therefore cached beside the fixtures (vault/), the import
 *    time measured when it was built is shown, and each run works on a copy of the
 *    database. BENCH_CRON_REIMPORT=1 imports again.
 *
 * 2. A full `passtore-cron run` that fetches, stores and deploys: a TestSite of HOSTS
 *    (default 50, $BENCH_CRON_HOSTS) real sshd hosts in network namespaces. The vault is
 *    set up in this process through tv.run: `host add FQDN --address IP`, `add FQDN` (root
 *    password typed at the scripted prompts), each host's SSH key pinned with
 *    store.setHostKey(site.hosts[i].hostKey) (instead of `host trust`, which would need
 *    this process inside the vault namespace; same value `host trust` pins), a pair per
 *    host (EC key, fixture CA certificate valid 20 more days) by `importcert DIR`, and
 *    `keyfile create`. Mail goes to an smtp-server receiver run by this file
 *    (`--smtp-sink`) inside the vault namespace on 127.0.0.1 ([smtp] host), which stores
 *    every message. The binary runs inside the vault namespace (`ip netns exec`), with the
 *    site's [network] guard commands and [ca] dir = a drop folder:
 *      a. `passtore-cron run` #1: renew makes HOSTS new keys (key_type default, rsa-2048)
 *         and requests and mails them with reminders; fetch finds the drop folder empty;
 *         send. Timed, for information.
 *      b. The requests are taken from the received mails (their .req attachments), signed
 *         by the fixture CA (test/x509/fixture-ca.ts, openssl x509 -req) into the drop
 *         folder.
 *      c. `passtore-cron run` #2, TIMED: renew (nothing new), fetch from the drop folder,
 *         store, deploy each pair over SSH through the guard, mail. Checked: exit 0, every
 *         certificate stored and deployed, the files on every host equal the signed ones,
 *         the mails received, the guard closed afterwards.
 *    Reported: the total and per certificate. With BENCH_CRON_CYCLES=2 (the default) the
 *    cycle is repeated once with putcrt-trace.js (the putcrt benchmark's tracer) loaded
 *    into the binary, for where the time goes; the traced run is not counted.
 *
 * 3. Side by side (issue 15): the cost of the run lease and the outbox claims in a
 *    `passtore-cron run` over 1,000 hosts, 50 of them due (EC P-256 pairs made by this
 *    part, imported with `importcert`). Each run starts from a fresh copy of the vault:
 *    renew makes 50 keys and requests, queues their mails and the reminders, fetch has no
 *    fetcher, send delivers them (plain SMTP, `insecure = yes`) to a receiver in this
 *    process. Target: the lease and claims cost at most 5% of such a run, measured on
 *    their own in this process on a copy of the same vault (the lease taken and released,
 *    one claim per mail the run sent), against the run's median (RUNS.sideBySide runs).
 *    For information, the same run by the build before them (commit
 *    $BENCH_CRON_BASELINE_REF, default 717a829, extracted with git archive and built with
 *    tsc into a temp dir, its node_modules linked; or an already built tree given as
 *    $BENCH_CRON_BASELINE_DIR), alternating, on the same pairs in a vault that build made
 *    with its own shell (it cannot open this build's: key slots and keyring came later).
 *    That ratio is not the lease's alone: everything merged since that commit is in it.
 *    Then `check` while a run holds the lease (held at its cron-renewed step with
 *    PASSTORE_HOLD_AT): median of RUNS.checkHeld runs, target < 300 ms; and `check` with
 *    no run, for reference.
 *
 * Notes on where the time goes (with the measured figures) are printed before the
 * SUMMARY. BENCH_CRON_PARTS=1, =2 or =3 runs those parts only (default 1,2,3).
 *
 * Clean-up (the site, its namespaces and sshd, the SMTP receiver, temp dirs) runs at the
 * end, on failure and on Ctrl-C; the fixtures and the cached vault are kept.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import type { Output, Prompter } from '../../src/command.js';
import { loadConfig } from '../../src/config.js';
import { cronContext, renew } from '../../src/cron/jobs.js';
import { acquireLease, isHeld } from '../../src/cron/lease.js';
import { openStore } from '../../src/storage/open.js';
import { Session } from '../../src/session.js';
import { daysLeft } from '../../src/x509/certificate.js';
import { siteUnavailable, TestSite } from '../support/site.js';
import { createTestVault, PASSPHRASE, removeTestDir, type TestVault } from '../support/scripted.js';
import { FixtureCa } from '../x509/fixture-ca.js';
import { cleanups, commandOutput, DAY, derived, disposedAtEnd, execFileP, fixtureNotAfter, fmt, loadOrMakeCa, signHostCert, spkiOf, fsType, loadAvg, netnsList, newEcKey, noteLoad, onHost, pool, printLoadAtStart, printLoads, printMachine, readTrace, results, runBench, sha256, sqliteVersion, sshdProcesses, sshVersion, stat, table, tempDir, timeAsync, TRACE_PICK, type Stat } from './bench-kit.js';
import { defaultCronFixtureRoot, ensureCronFixtures, type CronFixtures } from './cron-fixtures.js';
import type { TraceEvent } from './putcrt-trace.js';

const SELF = fileURLToPath(import.meta.url);
const CRON_BIN = fileURLToPath(new URL('../../src/bin/passtore-cron.js', import.meta.url));
const TRACER = fileURLToPath(new URL('./putcrt-trace.js', import.meta.url));

const FULL_BASELINE = process.env.BENCH_FULL_BASELINE === '1';
const HOSTS = Number(process.env.BENCH_CRON_HOSTS ?? 50);
const CYCLES = Number(process.env.BENCH_CRON_CYCLES ?? 2);
/** Which parts to run ($BENCH_CRON_PARTS, default "1,2,3"). */
const PARTS = new Set((process.env.BENCH_CRON_PARTS ?? '1,2,3').split(',').map((p) => p.trim()));
const RUNS = { binary: 7, toFile: 3, nodeStart: 5, version: 5, inProcess: 9, open: 3, imports: 3, sideBySide: 5, leaseClaims: 9, checkHeld: 7 };
const ENDDATE_SAMPLE = 1000;
const CRT_TTL = 30;
const TARGET_SPEEDUP = 100;
const CRT_PATH = '/etc/grid-security';
const SMTP_PORT = 2525;

// ---------------------------------------------------------------------------------------
// The SMTP receiver (run by this same file inside the vault namespace)

async function smtpSink(port: number, dir: string): Promise<void> {
  let n = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 20 * 1024 * 1024,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const id = ++n;
        writeFileSync(join(dir, `${String(id).padStart(5, '0')}.eml`), Buffer.concat(chunks));
        process.stdout.write(`mail ${id}\n`);
        callback();
      });
    },
  });
  server.on('error', (e) => process.stderr.write(`smtp sink: ${e.message}\n`));
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
  server.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
}

// ---------------------------------------------------------------------------------------
// Figures, targets and findings

const { checks, record, print: printResults } = results();

/** Where the time goes, in words with the measured figures, printed before the SUMMARY. */
const findings: string[] = [];

// ---------------------------------------------------------------------------------------
// Helpers

/** Packages passtore-cron's entry module loads at start, whatever the command (see part 1). */
const IMPORT_PACKAGES = ['acme-client', 'imapflow', 'mailparser', 'mysql2/promise', 'nodemailer', 'ssh2', '@peculiar/x509', 'better-sqlite3', 'node-schedule'];
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** Milliseconds `await import(spec)` takes inside a fresh node process (start excluded). */
async function importCost(spec: string, env: Record<string, string>): Promise<number> {
  const code = `const t = performance.now(); await import(${JSON.stringify(spec)}); process.stdout.write(String(performance.now() - t));`;
  const { stdout } = await execFileP(process.execPath, ['--input-type=module', '-e', code], { cwd: REPO, env, encoding: 'utf8' });
  const ms = Number(stdout);
  if (!Number.isFinite(ms)) throw new Error(`import ${spec}: ${stdout}`);
  return ms;
}

interface CronResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the passtore-cron binary (optionally inside a namespace); never throws on a status. */
async function runCron(args: string[], env: Record<string, string>, ns?: string): Promise<CronResult> {
  const argv = [...(ns ? ['ip', 'netns', 'exec', ns] : []), process.execPath, CRON_BIN, ...args];
  const t0 = performance.now();
  try {
    const { stdout, stderr } = await execFileP(argv[0]!, argv.slice(1), { env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
    return { code: 0, stdout, stderr, ms: performance.now() - t0 };
  } catch (e) {
    const err = e as { code?: unknown; stdout?: string; stderr?: string; message: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '', ms: performance.now() - t0 };
  }
}

/**
 * The same, with standard output and error going to files instead of pipes: passtore-cron
 * calls process.exit() right after writing its report, and output still queued for a
 * pipe or socket is lost then (see part 1), so every run whose output is checked in full
 * writes to a file. spawn → exit is timed (no shell in between).
 */
async function runCronToFile(args: string[], env: Record<string, string>, dir: string, ns?: string, bin = CRON_BIN): Promise<CronResult> {
  const argv = [...(ns ? ['ip', 'netns', 'exec', ns] : []), process.execPath, bin, ...args];
  const outFile = join(dir, `cron-${process.pid}-${++runSeq}.out`);
  const errFile = `${outFile.slice(0, -4)}.err`;
  const out = openSync(outFile, 'w', 0o600);
  const err = openSync(errFile, 'w', 0o600);
  const t0 = performance.now();
  let code: number;
  try {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', out, err] });
    code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
    });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const ms = performance.now() - t0;
  const r = { code, stdout: readFileSync(outFile, 'utf8'), stderr: readFileSync(errFile, 'utf8'), ms };
  rmSync(outFile, { force: true });
  rmSync(errFile, { force: true });
  return r;
}
let runSeq = 0;

const countLines = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

function cronEnv(home: string): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: home, XDG_DATA_HOME: join(home, 'xdg'), PASSTORE_SCRYPT_LOG_N: '14', PASSTORE_TEST_SWITCHES: 'for-tests-only', LANG: 'C.UTF-8' };
}

/** The prompter and output of a program with no one at the keyboard (as src/cron/main.ts). */
const noPrompt: Prompter = {
  secret: () => Promise.reject(new Error('no prompts in the benchmark')),
  confirm: () => Promise.reject(new Error('no prompts in the benchmark')),
};
const quietOut: Output = { line: () => undefined, table: () => undefined, progress: () => undefined, paint: (t) => t };

/** A fresh test vault, closed and its directory removed at the end. */
async function freshVault(domain?: string): Promise<TestVault & { dispose(): Promise<void> }> {
  const tv = await createTestVault({ operator: 'bench', ...(domain ? { domain } : {}) });
  return disposedAtEnd(tv, async () => {
    await tv.close().catch(() => undefined);
    removeTestDir(tv);
  });
}

async function mustRun(tv: TestVault, line: string, ...answers: string[]): Promise<string> {
  tv.io.lines.length = 0;
  const status = await tv.run(line, ...answers);
  const out = tv.io.text();
  if (status !== 0) throw new Error(`${line}: status ${status}:\n${out.slice(-2000)}`);
  return out;
}

function machineInfo(): void {
  printMachine();
  console.log(`node ${process.version} (OpenSSL ${process.versions.openssl}), SQLite ${sqliteVersion()} (better-sqlite3), ${commandOutput(['openssl', 'version'])}, ${sshVersion()}`);
  console.log(`tmp: ${os.tmpdir()} (${fsType(os.tmpdir())}); fixtures: ${defaultCronFixtureRoot()} (${fsType('/var/tmp')})`);
  printLoadAtStart('the machine is busy (other processes); figures will be slower and noisier');
}

// ---------------------------------------------------------------------------------------
// Part 1: renew --dry-run over 10,000 certificates

interface CachedVault {
  db: string;
  keyfile: string;
  importMs: number;
  builtAt: string;
  certsGeneratedAt: string;
  made: boolean;
}

/**
 * The vault holding the 10,000 fixture pairs, imported once by `importcert DIR` and kept
 * beside the fixtures (importcert of 10,000 pairs took 8 s here). Rebuilt when
 * the fixtures' certificates were re-signed, or with BENCH_CRON_REIMPORT=1. The key file's
 * slot is named by its path, so the key file stays in the cache and each run copies the
 * database only.
 */
async function cachedVault(fixtures: CronFixtures): Promise<CachedVault> {
  const dir = join(fixtures.root, 'vault');
  const manifest = join(dir, 'vault.json');
  if (process.env.BENCH_CRON_REIMPORT !== '1') {
    try {
      const v = JSON.parse(readFileSync(manifest, 'utf8')) as CachedVault;
      if (v.certsGeneratedAt === fixtures.certsGeneratedAt && existsSync(v.db) && existsSync(v.keyfile)) return { ...v, made: false };
    } catch {
      // none yet
    }
  }
  console.log(`  building the vault cache: importcert ${fixtures.dir} (10,000 pairs) into a fresh vault …`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tv = await freshVault();
  let out = '';
  const importMs = await timeAsync(async () => {
    out = await mustRun(tv, `importcert ${fixtures.dir}`);
  });
  if (!out.includes('20000 files read; 10000 pairs added')) throw new Error(`importcert: unexpected output:\n${out.slice(0, 2000)}`);
  const keyfile = join(dir, 'cron.key');
  await mustRun(tv, `keyfile create ${keyfile}`, PASSPHRASE);
  await tv.close();
  const src = tv.config.db.slice('sqlite:'.length);
  if (existsSync(`${src}-wal`)) throw new Error(`${src}-wal is left after close; the copy would be incomplete`);
  const db = join(dir, 'vault.db');
  copyFileSync(src, db);
  const v: CachedVault = { db, keyfile, importMs, builtAt: new Date().toISOString(), certsGeneratedAt: fixtures.certsGeneratedAt, made: true };
  writeFileSync(manifest, JSON.stringify(v));
  console.log(`  importcert: ${fmt(importMs)} ms; vault cached in ${dir}`);
  return v;
}

interface Part1 {
  binary: Stat;
  inProcess: Stat;
  baseline10k: number;
  sampled: boolean;
  due: number;
}

async function part1(fixtures: CronFixtures): Promise<Part1> {
  console.log('\n== 1. passtore-cron renew --dry-run over 10,000 certificates');
  const nowMs = Date.now();
  const due = fixtures.pairs.filter((p) => daysLeft(p.notAfter, nowMs) <= CRT_TTL).length;
  const expired = fixtures.pairs.filter((p) => Date.parse(p.notAfter) <= nowMs).length;
  if (expired > 0) throw new Error(`${expired} fixture certificates are expired; remove ${fixtures.root} to regenerate`);
  console.log(`  fixtures: ${fixtures.pairs.length} pairs, ${due} within ${CRT_TTL} days (certificates made ${fixtures.certsGeneratedAt.slice(0, 16)}Z)`);

  // ---- The vault: importcert of the 10,000 pairs (cached), and a key file ---------------
  const work = tempDir('passtore-cron-bench-');
  const vault = await cachedVault(fixtures);
  const dbPath = join(work, 'vault.db');
  copyFileSync(vault.db, dbPath);
  const keyfile = vault.keyfile;
  record(
    `   1x. importcert 10,000 pairs (20,000 files) into a fresh vault (setup${vault.made ? '' : ', CACHED'})`,
    [vault.importMs],
    `tv.run(importcert DIR), which is one transaction; ${vault.made ? 'measured in this run' : `measured when the vault cache was built (${vault.builtAt.slice(0, 16)}Z)`}; the populated vault is cached in ${dirname(vault.db)} and copied for each run (BENCH_CRON_REIMPORT=1 rebuilds it)`,
  );
  const configFile = join(work, 'passtore.conf');
  writeFileSync(configFile, [`db = sqlite:${dbPath}`, `keyfile = ${keyfile}`, ''].join('\n'));
  const env = cronEnv(work);
  console.log(`  vault ${dbPath}: copy of the cached import (importcert took ${fmt(vault.importMs)} ms${vault.made ? ', in this run' : ' when cached'}); key file ${keyfile}; config ${configFile}: db, keyfile`);

  // The query plan of the scan (read-only connection).
  const ro = new Database(dbPath, { readonly: true });
  const plan = (
    ro
      .prepare(
        "EXPLAIN QUERY PLAN SELECT c.*, h.fqdn, k.spki_sha256 AS key_spki_sha256, k.key_type AS key_type FROM certificates c JOIN hosts h ON h.id = c.host_id LEFT JOIN private_keys k ON k.id = c.key_id WHERE c.state = 'current' AND c.not_after < ? ORDER BY c.not_after",
      )
      .all(new Date(Date.now() + CRT_TTL * DAY).toISOString()) as Array<{ detail: string }>
  )
    .map((r) => r.detail)
    .join('; ');
  ro.close();
  console.log(`  expiringCertificates query plan: ${plan}`);

  // ---- The binary ----------------------------------------------------------------------
  const expectDue = () => fixtures.pairs.filter((p) => daysLeft(p.notAfter, Date.now()) <= CRT_TTL).length;
  // Through async execFile (stdout a socket pair): timed. Through a file: timed and checked in full.
  const received: number[] = [];
  const binaryOnce = async (): Promise<number> => {
    const r = await runCron(['--config', configFile, 'renew', '--dry-run'], env);
    const lines = r.stdout.split('\n').filter(Boolean);
    const n = countLines(r.stdout, /^would renew \S+: expires /);
    // Every complete line received must be a "would renew" line; the last may be cut.
    if (r.code !== 0 || n === 0 || n > expectDue() || lines.slice(0, -1).some((l) => !/^would renew \S+: expires /.test(l))) {
      throw new Error(`passtore-cron renew --dry-run: status ${r.code}, ${n} "would renew" lines:\n${r.stdout.slice(-1500)}${r.stderr}`);
    }
    received.push(n);
    return r.ms;
  };
  const binaryToFile = async (): Promise<number> => {
    const r = await runCronToFile(['--config', configFile, 'renew', '--dry-run'], env, work);
    const n = countLines(r.stdout, /^would renew \S+: expires /);
    const want = expectDue();
    if (r.code !== 0 || n !== want || r.stdout.split('\n').filter(Boolean).length !== want) {
      throw new Error(`passtore-cron renew --dry-run > file: status ${r.code}, ${n} "would renew" lines (expected ${want}):\n${r.stdout.slice(-1500)}${r.stderr}`);
    }
    return r.ms;
  };
  const nodeOnce = async () => timeAsync(() => execFileP(process.execPath, ['-e', ''], { env }));
  const versionOnce = async (): Promise<number> => {
    const r = await runCron(['--version'], env);
    if (r.code !== 0 || !r.stdout.startsWith('passtore-cron ')) throw new Error(`passtore-cron --version: ${r.code} ${r.stdout}${r.stderr}`);
    return r.ms;
  };
  await binaryToFile(); // warm-up (page cache), not counted
  await versionOnce();
  const binTimes: number[] = [];
  const fileTimes: number[] = [];
  const nodeTimes: number[] = [];
  const versionTimes: number[] = [];
  for (let i = 0; i < RUNS.binary; i++) {
    binTimes.push(await binaryOnce());
    if (i < RUNS.toFile) fileTimes.push(await binaryToFile());
    if (i < RUNS.nodeStart) nodeTimes.push(await nodeOnce());
    if (i < RUNS.version) versionTimes.push(await versionOnce());
  }
  console.log(`  binary runs (execFile): ${binTimes.map(fmt).join(', ')} ms; stdout to a file: ${fileTimes.map(fmt).join(', ')} ms (load ${loadAvg()})`);
  const truncated = received.filter((n) => n < due).length;
  if (truncated) {
    findings.push(
      `LOST OUTPUT (correctness): passtore-cron renew --dry-run exited 0 but the parent received only ${Math.min(...received)}–${Math.max(...received)} of its ${due} report lines through async execFile (stdout a socket pair) in ${truncated} of ${received.length} runs; all ${due} when stdout is a file. ` +
        'src/bin/passtore-cron.ts must not exit while the report (printReport, src/cron/main.ts, one process.stdout.write per line) is still queued for a full pipe or socket: process.exit() drops that queue, and whoever reads the output through a pipe (a Node parent, systemd\'s journal stream, cron\'s mail pipe) loses the tail, the FAILED lines first. It exits in the callback of a last, empty write to stdout and stderr; if this shows again, that wait was lost.',
    );
  }
  console.log(
    `  "would renew" lines received through execFile: ${received.join(', ')} of ${due}${truncated ? ` — OUTPUT LOST in ${truncated} of ${received.length} runs (exit 0 each time); through a file: all ${due}, every run` : ' (all)'}`,
  );
  const binary = record(
    `1. passtore-cron renew --dry-run (binary, 10,000 certs, ${due} due)`,
    binTimes,
    `async execFile, spawn → exit; exit 0 checked, and every line received is a "would renew" line (${Math.min(...received)}–${Math.max(...received)} of ${due} received: see the lost-output note)`,
  );
  record('   1k. the same, stdout to a file (spawn)', fileTimes, `exit 0 and all ${due} "would renew" lines checked each run`);
  const nodeStat = record('   1a. node -e "" (bare process start)', nodeTimes, 'same env; spawn → exit');
  const versionStat = record('   1b. passtore-cron --version (start + module loading, no vault)', versionTimes, 'imports src/cron/main.js and everything it loads, opens nothing');

  // ---- Where the start-up goes: importing the modules, each in a fresh process ----------
  // The time of `await import(X)` measured inside a fresh node (so without process start),
  // for passtore-cron's entry module and, alone, each dependency it loads at start.
  const importSpecs: Array<[string, string]> = [
    ['src/cron/main.js (all that passtore-cron loads)', new URL('../../src/cron/main.js', import.meta.url).href],
    ...IMPORT_PACKAGES.map((p) => [p, p] as [string, string]),
  ];
  const importTimes = new Map<string, number[]>(importSpecs.map(([label]) => [label, []]));
  for (let r = 0; r < RUNS.imports; r++) {
    for (const [label, spec] of importSpecs) importTimes.get(label)!.push(await importCost(spec, env));
  }
  const mainImport = record('   1l. import of src/cron/main.js in a fresh node', importTimes.get(importSpecs[0]![0])!, 'await import() timed inside the process: the module graph passtore-cron loads before it does anything');
  for (const [label] of importSpecs.slice(1)) record(`      1l. import '${label}' alone`, importTimes.get(label)!, undefined);

  // ---- In process: the same steps passtore-cron takes, timed apart --------------------
  const config = loadConfig(configFile);
  const stateDir = join(work, 'xdg', 'passtore');
  const openTimes: number[] = [];
  const unlockTimes: number[] = [];
  let session: Session | undefined;
  for (let i = 0; i < RUNS.open; i++) {
    await session?.close();
    let s: Session | undefined;
    openTimes.push(await timeAsync(async () => (s = await Session.open({ config, prompt: noPrompt, out: quietOut, terminal: false, stateDir }))));
    unlockTimes.push(await timeAsync(() => s!.unlockWithKeyfile(config.keyfile!)));
    session = s;
  }
  cleanups.push(() => session?.close());
  const openStat = record('   1c. Session.open (open SQLite, migrations check, load vault)', openTimes, 'in this process');
  const unlockStat = record('   1d. session.unlockWithKeyfile (scrypt 2^14, audit record)', unlockTimes, 'in this process');
  const s = session!;
  const renewOnce = async (): Promise<number> => {
    let lines = 0;
    const ms = await timeAsync(async () => {
      lines = countLines((await renew(cronContext(s), { dryRun: true })).lines.join('\n'), /^would renew /);
    });
    if (lines !== expectDue()) throw new Error(`renew dry run gave ${lines} lines, expected ${expectDue()}`);
    return ms;
  };
  await renewOnce(); // warm-up (JIT)
  const renewTimes: number[] = [];
  const queryTimes: number[] = [];
  for (let i = 0; i < RUNS.inProcess; i++) {
    renewTimes.push(await renewOnce());
    let soon: Awaited<ReturnType<typeof s.store.expiringCertificates>> = [];
    queryTimes.push(await timeAsync(async () => (soon = await s.store.expiringCertificates(new Date(Date.now() + CRT_TTL * DAY).toISOString()))));
    if (soon.length !== expectDue()) throw new Error(`expiringCertificates gave ${soon.length}, expected ${expectDue()}`);
  }
  const inProcess = record(`1e. renew(session, { dryRun: true }) in process (${due} due)`, renewTimes, 'src/cron/jobs.ts, the scan itself; session already open and unlocked');
  const queryStat = record('   1f. of which store.expiringCertificates(now + 30 d)', queryTimes, `one indexed query, ${due} rows (with their PEM) mapped`);
  const startCost = binary.median - inProcess.median;
  const pkgs = IMPORT_PACKAGES.map((p) => [p, stat(importTimes.get(p)!).median] as const).sort((a, b) => b[1] - a[1]);
  findings.push(
    `START-UP: the binary takes ${fmt(binary.median)} ms, the scan itself ${fmt(inProcess.median)} ms (${((100 * inProcess.median) / binary.median).toFixed(1)}%; its one indexed expiringCertificates query ${fmt(queryStat.median)} ms). ` +
      `Importing src/cron/main.js alone takes ${fmt(mainImport.median)} ms in a fresh node (bare node start ${fmt(nodeStat.median)} ms; --version ${fmt(versionStat.median)} ms). ` +
      `Alone, in a fresh process (each is loaded only by the commands that use it): ${pkgs.map(([p, ms]) => `${p} ${fmt(ms)} ms`).join(', ')}.`,
  );
  record('   1h. binary minus in-process renew (process start, imports, open, unlock, close)', derived(startCost), `derived: ${((100 * startCost) / binary.median).toFixed(0)}% of the binary's time; 1b + 1c + 1d = ${fmt(versionStat.median + openStat.median + unlockStat.median)} ms`);

  // ---- Baseline: openssl x509 -noout -enddate per exported file --------------------------
  const exportDir = join(work, 'exported');
  mkdirSync(exportDir);
  const current = await s.store.currentCertificates('*');
  if (current.length !== 10_000) throw new Error(`the vault holds ${current.length} current certificates, not 10,000`);
  const exportMs = await timeAsync(async () => {
    for (const c of current) writeFileSync(join(exportDir, `${c.fqdn}.pem`), c.pem);
  });
  const vaultDates = new Map(current.map((c) => [join(exportDir, `${c.fqdn}.pem`), c.notAfter]));
  const files = [...vaultDates.keys()].sort();
  const sample = FULL_BASELINE ? files : files.slice(0, ENDDATE_SAMPLE);
  await session!.close();
  session = undefined;
  noteLoad('before openssl loop');
  console.log(`  exported ${current.length} certificates from the vault to ${exportDir} in ${fmt(exportMs)} ms; openssl loop over ${FULL_BASELINE ? 'all 10,000 files' : `a ${sample.length}-file sample`} …`);
  // The original tool's way: a shell loop, one openssl process per file.
  const loop = 'for f in "$@"; do printf "%s " "$f"; openssl x509 -noout -enddate -in "$f" || exit 1; done';
  const t0 = performance.now();
  const { stdout } = await execFileP('sh', ['-c', loop, 'sh', ...sample], { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
  const loopMs = performance.now() - t0;
  const read = stdout.trim().split('\n').map((l) => /^(\S+) notAfter=(.+)$/.exec(l));
  if (read.length !== sample.length || read.some((m) => !m)) throw new Error(`the openssl loop printed ${read.length} lines for ${sample.length} files`);
  let sampleDue = 0;
  for (const m of read) {
    const when = Date.parse(m![2]!);
    if (Math.floor(when / 1000) !== Math.floor(Date.parse(vaultDates.get(m![1]!)!) / 1000)) throw new Error(`openssl read ${m![2]} from ${m![1]}, the vault says ${vaultDates.get(m![1]!)}`);
    if (daysLeft(new Date(when).toISOString()) <= CRT_TTL) sampleDue++;
  }
  const baseline10k = (loopMs * files.length) / sample.length;
  record(
    `1i. openssl x509 -noout -enddate loop, ${sample.length} files${FULL_BASELINE ? ' (all)' : ' (SAMPLE, measured)'}`,
    [loopMs],
    `one sh running the loop (fork+exec of openssl per file); per file ${fmt(loopMs / sample.length)} ms; ${sampleDue} due within ${CRT_TTL} days in it; every date checked against the vault`,
  );
  if (!FULL_BASELINE) record('1j. openssl -enddate loop, 10,000 files EXTRAPOLATED', derived(baseline10k), `linear: the ${sample.length}-file sample × ${files.length / sample.length}`);

  const speedup = baseline10k / binary.median;
  const how = FULL_BASELINE ? 'baseline measured over all 10,000 files' : `baseline EXTRAPOLATED from a ${sample.length}-file sample`;
  checks.push({
    name: '1. renew --dry-run binary vs openssl -enddate loop (10,000)',
    measured: `${speedup.toFixed(0)}× faster`,
    required: `≥ ${TARGET_SPEEDUP}×`,
    ratio: speedup / TARGET_SPEEDUP,
    verdict: speedup >= TARGET_SPEEDUP ? 'met' : 'MISSED',
    note: `${how}: ${fmt(baseline10k)} ms vs ${fmt(binary.median)} ms (median of ${binary.n} binary runs, process start included)`,
  });
  const inSpeed = baseline10k / inProcess.median;
  checks.push({
    name: '1. in-process renew vs openssl loop (info)',
    measured: `${inSpeed.toFixed(0)}× faster`,
    required: `(≥ ${TARGET_SPEEDUP}×)`,
    ratio: inSpeed / TARGET_SPEEDUP,
    verdict: 'info',
    note: `${fmt(baseline10k)} ms vs ${fmt(inProcess.median)} ms: the scan alone, without process start, unlock and close`,
  });
  return { binary, inProcess, baseline10k, sampled: !FULL_BASELINE, due };
}

// ---------------------------------------------------------------------------------------
// Part 2: a full passtore-cron run over real hosts

function leftovers(site: TestSite): string {
  const ns = netnsList();
  const sshd = sshdProcesses();
  const ours = ns.split('\n').filter((l) => l.includes(site.id)).length;
  const ourSshd = sshd.split('\n').filter((l) => l.includes(site.dir)).length;
  return `namespaces of this run left: ${ours}; sshd of this run left: ${ourSshd} (others on the machine: ${ns ? ns.split('\n').length - ours : 0} namespaces)`;
}

async function startSink(site: TestSite, dir: string): Promise<{ child: ChildProcess; count: () => number }> {
  const child = spawn('ip', ['netns', 'exec', site.vaultNs, process.execPath, SELF, '--smtp-sink', String(SMTP_PORT), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let n = 0;
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 3000).unref();
      });
    }
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the SMTP receiver did not start: ${err}`)), 15_000);
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        if (l === 'listening') {
          clearTimeout(timer);
          resolve();
        } else if (l.startsWith('mail ')) n++;
      }
    });
    child.once('exit', (code) => reject(new Error(`the SMTP receiver exited (${code}): ${err}`)));
  });
  return { child, count: () => n };
}

interface Mail {
  file: string;
  subject: string;
  requests: Array<{ filename: string; content: string }>;
}

async function readMails(dir: string, seen: Set<string>): Promise<Mail[]> {
  const out: Mail[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (seen.has(f)) continue;
    seen.add(f);
    const m = await simpleParser(readFileSync(join(dir, f)));
    out.push({ file: f, subject: m.subject ?? '', requests: m.attachments.filter((a) => a.filename?.endsWith('.req')).map((a) => ({ filename: a.filename!, content: a.content.toString('utf8') })) });
  }
  return out;
}

/** Milliseconds of wall time during which at least one of the events lasted (their union). */
function coveredMs(events: TraceEvent[]): number {
  const spans = events.map((e) => [e.t - e.ms, e.t] as const).sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of spans) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

interface Part2 {
  hosts: number;
  deploy: number;
  renewRun: number;
  setupS: number;
}

async function part2(): Promise<Part2> {
  console.log(`\n== 2. passtore-cron run: fetch, store and deploy ${HOSTS} certificates to ${HOSTS} sshd hosts`);
  const why = siteUnavailable();
  if (why) throw new Error(`the test site cannot be built here: ${why}`);
  const tSite = performance.now();
  const site = await TestSite.start(HOSTS);
  cleanups.push(async () => {
    await site.stop();
    console.log(`clean-up: site stopped; ${leftovers(site)}`);
  });
  const siteS = (performance.now() - tSite) / 1000;
  console.log(`  site: ${HOSTS} hosts up in ${siteS.toFixed(1)} s (vault namespace ${site.vaultNs}, hosts ${site.hosts[0]!.address}–${site.hosts.at(-1)!.address})`);
  noteLoad('site up');

  const tSetup = performance.now();
  const work = tempDir('passtore-cron-run-');
  const ca = await FixtureCa.create();
  cleanups.push(() => ca.remove());
  const tv = await freshVault(site.domain);
  for (const h of site.hosts) {
    await mustRun(tv, `host add ${h.fqdn} --address ${h.address}`);
    await mustRun(tv, `add ${h.fqdn}`, h.rootPassword, h.rootPassword);
    const row = await tv.session.store.getHost(h.fqdn);
    await tv.session.store.setHostKey(row!.id, h.hostKey);
  }
  // A pair per host, due within crt_ttl: EC key (Node), certificate by the fixture CA.
  const initDir = join(work, 'initial');
  mkdirSync(initDir);
  await pool(site.hosts.length, 4, async (i) => {
    const h = site.hosts[i]!;
    const privateKey = await newEcKey();
    const keyPath = join(initDir, `${h.name}.key`);
    writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    await ca.issue(keyPath, h.fqdn, { days: 20, out: join(initDir, `${h.name}.crt`) });
  });
  const imported = await mustRun(tv, `importcert ${initDir}`);
  if (!imported.includes(`${HOSTS} pairs added`)) throw new Error(`importcert: ${imported}`);
  const keyfile = join(work, 'cron.key');
  await mustRun(tv, `keyfile create ${keyfile}`, PASSPHRASE);
  await tv.close();
  const dbPath = tv.config.db.slice('sqlite:'.length);

  const drop = join(work, 'drop');
  const mailDir = join(work, 'mail');
  mkdirSync(drop, { mode: 0o700 });
  mkdirSync(mailDir);
  const configFile = join(work, 'passtore.conf');
  writeFileSync(
    configFile,
    [
      `domain = ${site.domain}`,
      `db = sqlite:${dbPath}`,
      `keyfile = ${keyfile}`,
      'admin_email = pki-admin@site.test',
      `crt_path = ${CRT_PATH}`,
      '[smtp]',
      'host = 127.0.0.1',
      `port = ${SMTP_PORT}`,
      'from = passtore-cron@site.test',
      'insecure = yes',
      ...site.networkConfig(),
      '[ca]',
      `dir = ${drop}`,
      `trust = ${ca.caCert}`,
      '',
    ].join('\n'),
  );
  const sink = await startSink(site, mailDir);
  const env = cronEnv(work);
  const setupS = (performance.now() - tSetup) / 1000;
  console.log(
    `  vault: ${HOSTS} hosts (host add --address, add: root password, SSH key pinned by store.setHostKey), ${HOSTS} EC pairs due in 20 days (importcert), key file; SMTP receiver on 127.0.0.1:${SMTP_PORT} in the vault namespace; set-up ${setupS.toFixed(1)} s`,
  );
  noteLoad('after set-up');

  const seenMail = new Set<string>();
  const hostByFqdn = new Map(site.hosts.map((h) => [h.fqdn, h]));
  const renewTimes: number[] = [];
  const deployTimes: number[] = [];
  const tracedTimes: number[] = [];
  let traced: TraceEvent[] = [];
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const trace = cycle > 1;
    console.log(`  cycle ${cycle}/${CYCLES}${trace ? ' (traced: putcrt-trace.js loaded into the binary; not counted)' : ''}:`);
    // a. renew (+ mail)
    const r1 = await runCronToFile(['--config', configFile, 'run'], env, work, site.vaultNs);
    const renewed = countLines(r1.stdout, /^renew \S+: new \S+ key and request/);
    const sentLine = /^mail: (\d+) sent$/m.exec(r1.stdout);
    if (r1.code !== 0 || renewed !== HOSTS) throw new Error(`passtore-cron run (renew): status ${r1.code}, ${renewed} renewals (expected ${HOSTS}):\n${r1.stdout.slice(-3000)}${r1.stderr}`);
    renewTimes.push(r1.ms);
    const mails = await readMails(mailDir, seenMail);
    const reqs = mails.flatMap((m) => m.requests);
    console.log(`    run (renew): ${fmt(r1.ms)} ms, status ${r1.code}; ${renewed} new keys and requests; ${sentLine?.[1] ?? 0} mails sent, ${mails.length} received (${reqs.length} with a request)`);
    if (reqs.length !== HOSTS) throw new Error(`received ${reqs.length} requests by mail, expected ${HOSTS}`);

    // b. the CA signs into the drop folder
    const reqDir = join(work, `requests-${cycle}`);
    const staging = join(work, `signed-${cycle}`);
    mkdirSync(reqDir);
    mkdirSync(staging);
    const signed = new Map<string, string>();
    const signMs = await timeAsync(() =>
      pool(reqs.length, 4, async (i) => {
        const r = reqs[i]!;
        const fqdn = r.filename.replace(/\.req$/, '');
        if (!hostByFqdn.has(fqdn)) throw new Error(`a request for an unknown host: ${r.filename}`);
        const reqPath = join(reqDir, r.filename);
        writeFileSync(reqPath, r.content);
        // Valid 25 days: still within crt_ttl, so the next cycle renews again.
        signed.set(fqdn, await ca.sign(reqPath, { out: join(staging, `${fqdn}.pem`), days: 25 }));
      }),
    );
    for (const [fqdn, file] of signed) renameSync(file, join(drop, `${fqdn}.pem`));
    console.log(`    fixture CA signed ${signed.size} requests into the drop folder in ${fmt(signMs)} ms`);

    // c. the timed run: fetch, store, deploy, mail
    const traceFile = join(work, `trace-${cycle}.jsonl`);
    const runEnv = trace ? { ...env, NODE_OPTIONS: `--import ${TRACER}`, PASSTORE_BENCH_TRACE: traceFile } : env;
    const mailsBefore = sink.count();
    const r2 = await runCronToFile(['--config', configFile, 'run'], runEnv, work, site.vaultNs);
    const stored = countLines(r2.stdout, /^stored the certificate for /);
    const deployed = countLines(r2.stdout, new RegExp(`^\\S+: deployed to ${CRT_PATH.replace(/\//g, '\\/')} `));
    const sent2 = Number(/^mail: (\d+) sent$/m.exec(r2.stdout)?.[1] ?? 0);
    console.log(`    run (fetch + deploy): ${fmt(r2.ms)} ms, status ${r2.code}; ${stored} stored, ${deployed} deployed, ${sent2} mails sent (load ${loadAvg()})`);
    if (r2.code !== 0 || stored !== HOSTS || deployed !== HOSTS || sent2 !== HOSTS) throw new Error(`passtore-cron run (fetch): unexpected result:\n${r2.stdout.slice(-4000)}${r2.stderr}`);
    if (sink.count() - mailsBefore !== HOSTS) throw new Error(`the SMTP receiver got ${sink.count() - mailsBefore} mails, expected ${HOSTS}`);
    (trace ? tracedTimes : deployTimes).push(r2.ms);
    if (trace) traced = readTrace(traceFile);

    // Checks: the files on each host, the drop folder, the guard, the database.
    await pool(site.hosts.length, 8, async (i) => {
      const h = site.hosts[i]!;
      const onIt = await onHost(h, ['cat', `${CRT_PATH}/hostcert.pem`]);
      if (sha256(onIt) !== sha256(readFileSync(join(env.XDG_DATA_HOME!, 'passtore', 'ca-drop', 'done', `${h.fqdn}.pem`)))) throw new Error(`${h.name}: the deployed certificate is not the one signed`);
    });
    const left = readdirSync(drop).filter((f) => f.endsWith('.pem'));
    if (left.length) throw new Error(`the drop folder still holds ${left.length} files`);
    for (const f of readdirSync(join(env.XDG_DATA_HOME!, 'passtore', 'ca-drop', 'done'))) renameSync(join(env.XDG_DATA_HOME!, 'passtore', 'ca-drop', 'done', f), join(work, `signed-${cycle}`, f));
    const state = await site.vaultState();
    if (state.linkUp || state.rules.length) throw new Error(`the guard was left open: link ${state.linkUp ? 'up' : 'down'}, rules ${state.rules.join('; ')}`);
    const db = new Database(dbPath, { readonly: true });
    const row = db.prepare("SELECT COUNT(*) AS n, SUM(deployed_at IS NOT NULL) AS d FROM certificates WHERE state = 'current'").get() as { n: number; d: number };
    const open = db.prepare("SELECT COUNT(*) AS n FROM cert_requests WHERE state IN ('created', 'sent')").get() as { n: number };
    db.close();
    if (row.n !== HOSTS || row.d !== HOSTS || open.n !== 0) throw new Error(`database after the run: ${row.n} current certificates, ${row.d} deployed, ${open.n} open requests`);
    console.log(`    checked: ${HOSTS} hosts hold the signed certificate; drop folder emptied (copies in ca-drop/done/); guard closed (link down, no rules); ${row.d}/${row.n} current certificates marked deployed, 0 open requests`);
    await readMails(mailDir, seenMail);
  }
  noteLoad('after cron runs');

  const renewStat = record(`   2a. passtore-cron run #1: renew ${HOSTS} (rsa-2048 keys, requests) + send mail`, renewTimes, `in the vault namespace; ${HOSTS} requests + ${HOSTS} reminders mailed; fetch found the drop folder empty`);
  const deployStat = record(`2. passtore-cron run #2: fetch + store + deploy ${HOSTS} + mail (TIMED)`, deployTimes, `ip netns exec … passtore-cron run, spawn → exit; ${HOSTS} certificates from the dir fetcher, deployed over SSH through the guard, ${HOSTS} mails`);
  record('   2b. per certificate (2 / hosts)', derived(deployStat.median / HOSTS), 'derived; includes process start, unlock and the mail of each');
  if (tracedTimes.length) record('   2c. the same, traced (diagnostic, not counted)', tracedTimes, 'putcrt-trace.js loaded with NODE_OPTIONS=--import');

  if (traced.length) {
    console.log('\n  where the time of the traced run goes (putcrt-trace.js events):');
    const sum = (xs: TraceEvent[]) => xs.reduce((a, e) => a + e.ms, 0);
    const phases: Array<[string, (e: TraceEvent) => boolean]> = [
      ['guard: ip link set vault0 up|down', TRACE_PICK.guardIp],
      ['guard: iptables -I|-D OUTPUT', TRACE_PICK.guardIptables],
      ['ssh connect (TCP, kex, password auth)', TRACE_PICK.connect],
      ['exec mkdir -p', TRACE_PICK.mkdir],
      ['exec rm -f (left-overs)', TRACE_PICK.rm],
      ['sftp open', TRACE_PICK.sftp],
      ['sftp writeFile (cert, key)', TRACE_PICK.write],
      ['exec install script', TRACE_PICK.install],
      ['connection lifetime (connect → close)', TRACE_PICK.session],
    ];
    const body = phases.map(([label, pick]) => {
      const xs = traced.filter(pick);
      return [label, String(xs.length), xs.length ? fmt(sum(xs) / xs.length) : '—', fmt(sum(xs)), fmt(sum(xs) / HOSTS)];
    });
    // The wall time covered by a guard command or an SSH connection: the connections run
    // up to 8 at once, so their durations are merged as intervals, not summed.
    const guardAndSsh = coveredMs(traced.filter((e) => e.ev === 'guard' || e.ev === 'session'));
    const wall = tracedTimes[0]!;
    body.push(['wall covered by guard commands or SSH connections', '', '', fmt(guardAndSsh), fmt(guardAndSsh / HOSTS)]);
    body.push(['rest (process start, unlock, fetch, store, mail, close)', '', '', fmt(wall - guardAndSsh), fmt((wall - guardAndSsh) / HOSTS)]);
    body.push(['wall (traced run)', '', '', fmt(wall), fmt(wall / HOSTS)]);
    table(['phase', 'events', 'mean ms', 'sum ms', 'ms per cert'], body, new Set([1, 2, 3, 4]));
    const sessions = traced.filter((e) => e.ev === 'session').map((e) => [e.t - e.ms, e.t] as [number, number]);
    let most = 0;
    for (const [a] of sessions) most = Math.max(most, sessions.filter(([x, y]) => x <= a && a < y).length);
    console.log(`  SSH connections open at once: at most ${most}`);
    const execs = traced.filter((e) => e.ev === 'exec');
    const guards = traced.filter((e) => e.ev === 'guard');
    const connects = traced.filter((e) => e.ev === 'connect');
    const lifetime = sum(traced.filter((e) => e.ev === 'session'));
    findings.push(
      `DEPLOYS in the fetch job: at most ${most} SSH connections were open at once in the traced run (the fetched certificates are deployed by a bounded pool, as putcrt does). ` +
        `Per certificate: ${fmt(lifetime / HOSTS)} ms of SSH connection (connect ${fmt(sum(connects) / Math.max(connects.length, 1))} ms, ${(execs.length / HOSTS).toFixed(1)} exec requests of mean ${fmt(sum(execs) / Math.max(execs.length, 1))} ms) and ${(guards.length / HOSTS).toFixed(1)} guard commands (${fmt(sum(guards) / HOSTS)} ms, run one at a time by the guard).`,
    );
  }
  return { hosts: HOSTS, deploy: deployStat.median, renewRun: renewStat.median, setupS: siteS + setupS };
}

// ---------------------------------------------------------------------------------------


// ---------------------------------------------------------------------------------------
// Part 3: side by side: the run lease and outbox claims against the build before them

const SIDE_HOSTS = 1000;
const SIDE_DUE_EVERY = 20;
const BASELINE_REF = process.env.BENCH_CRON_BASELINE_REF ?? '717a829';
const SIDE_TARGET = 1.05;
const CHECK_LIMIT_MS = 300;

interface Part3 {
  withLease: Stat;
  without: Stat;
  ratio: number;
  /** The lease and claims' own cost, as a share of a run. */
  share: number;
  checkHeld: Stat;
  checkIdle: Stat;
}

/** The baseline build's tree (built: dist/ holds its passtore-cron and its test support). */
async function baselineTree(): Promise<string> {
  const given = process.env.BENCH_CRON_BASELINE_DIR;
  if (given) return given;
  const dir = tempDir('passtore-bench-baseline-');
  console.log(`  building the baseline (${BASELINE_REF}) in ${dir} …`);
  await execFileP('sh', ['-c', 'git -C "$1" archive "$2" | tar -x -C "$3"', 'sh', REPO, BASELINE_REF, dir]);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  await execFileP(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  return dir;
}

/**
 * The vault a build makes of `pairs` (`importcert DIR`, then `keyfile create KEYFILE`),
 * by that build's own shell (its dist/test/support/scripted.js), copied to `out`: the
 * baseline cannot open a vault this build made (its key slots and keyring came later).
 */
async function vaultByBuild(tree: string, pairs: string, keyfile: string, domain: string, out: string): Promise<void> {
  const script = join(dirname(out), `make-vault-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(
    script,
    [
      "import { copyFileSync } from 'node:fs';",
      `const { createTestVault, PASSPHRASE, removeTestDir } = await import(${JSON.stringify(new URL(`file://${join(tree, 'dist/test/support/scripted.js')}`).href)});`,
      'const [pairs, keyfile, domain, out] = process.argv.slice(2);',
      "const tv = await createTestVault({ operator: 'bench', domain });",
      'for (const [line, ...answers] of [[`importcert ${pairs}`], [`keyfile create ${keyfile}`, PASSPHRASE]]) {',
      '  tv.io.lines.length = 0;',
      '  if ((await tv.run(line, ...answers)) !== 0) throw new Error(`${line}: ${tv.io.text().slice(-2000)}`);',
      '}',
      'await tv.close();',
      "copyFileSync(tv.config.db.slice('sqlite:'.length), out);",
      'removeTestDir(tv);',
      '',
    ].join('\n'),
  );
  await execFileP(process.execPath, [script, pairs, keyfile, domain, out], { cwd: tree, env: { ...process.env, PASSTORE_SCRYPT_LOG_N: '14' }, maxBuffer: 16 * 1024 * 1024 });
  rmSync(script, { force: true });
}

/** An SMTP receiver in this process on 127.0.0.1 that counts what it accepts. */
async function countingSmtp(): Promise<{ port: number; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, callback) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        n++;
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as { port: number }).port;
  return { port, count: () => n, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function part3(): Promise<Part3> {
  console.log(`\n== 3. passtore-cron run over ${SIDE_HOSTS} hosts (${SIDE_HOSTS / SIDE_DUE_EVERY} due): with the run lease and outbox claims vs the build before them (${BASELINE_REF})`);
  const tree = await baselineTree();
  const bin = join(tree, 'dist/src/bin/passtore-cron.js');
  const work = tempDir('passtore-bench-side-');
  // 1,000 EC pairs, one in twenty due within crt_ttl.
  const pairs = join(work, 'pairs');
  mkdirSync(pairs);
  const ca = await loadOrMakeCa(work, 'CN=passtore bench side CA, O=passtore bench');
  const base = Date.now();
  const domain = 'side.example.org';
  await pool(SIDE_HOSTS, 16, async (i) => {
    const host = `h-${String(i).padStart(4, '0')}.${domain}`;
    const key = await newEcKey();
    writeFileSync(join(pairs, `${host}.key`), key.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    const notAfter = fixtureNotAfter(i, base, SIDE_DUE_EVERY, 0);
    writeFileSync(join(pairs, `${host}.pem`), await signHostCert(ca, spkiOf(key), host, { i, base, notAfter, usages: ['serverAuth', 'clientAuth'], dnsNames: [host] }));
  });
  const tv = await freshVault(domain);
  const out = await mustRun(tv, `importcert ${pairs}`);
  if (!out.includes(`${SIDE_HOSTS} pairs added`)) throw new Error(`importcert: unexpected output:\n${out.slice(0, 2000)}`);
  const keyfile = join(work, 'cron.key');
  await mustRun(tv, `keyfile create ${keyfile}`, PASSPHRASE);
  await tv.close();
  const template = join(work, 'template.db');
  copyFileSync(tv.config.db.slice('sqlite:'.length), template);
  // The same pairs in a vault the baseline build made itself, with its own key file.
  const oldTemplate = join(work, 'template-old.db');
  const oldKeyfile = join(work, 'cron-old.key');
  await vaultByBuild(tree, pairs, oldKeyfile, domain, oldTemplate);

  const smtp = await countingSmtp();
  cleanups.push(() => smtp.close());
  const home = join(work, 'home');
  mkdirSync(join(home, 'xdg'), { recursive: true, mode: 0o700 });
  const env = cronEnv(home);
  // Both builds send over plain SMTP to the receiver: this one refuses to without TLS
  // unless told `insecure = yes`, a key the baseline does not know (it would refuse the file).
  const configFor = (dbFile: string, which: 'new' | 'old' = 'new'): string => {
    const file = join(work, `${Math.random().toString(36).slice(2)}.conf`);
    writeFileSync(file, `domain = ${domain}\ndb = sqlite:${dbFile}\nkeyfile = ${which === 'new' ? keyfile : oldKeyfile}\nadmin_email = hostmaster@${domain}\ncrt_ttl = ${CRT_TTL}\n\n[smtp]\nhost = 127.0.0.1\nport = ${smtp.port}\nfrom = passtore@vault.${domain}\n${which === 'new' ? 'insecure = yes\n' : ''}`, { mode: 0o600 });
    return file;
  };
  const due = SIDE_HOSTS / SIDE_DUE_EVERY;
  let mailsPerRun = 0;
  // This build keeps the vault's sealed state on the machine (src/vault/rollback.ts), and
  // a fresh copy of the template after a run is an older state: each run starts as the
  // first one on this machine, so it is not refused as a rollback.
  const stateDir = join(home, 'xdg', 'passtore');
  const forgetVaultState = () => {
    if (existsSync(stateDir)) for (const f of readdirSync(stateDir)) if (/^head-.*\.json$/.test(f)) rmSync(join(stateDir, f));
  };
  const once = async (which: 'new' | 'old'): Promise<number> => {
    const dbFile = join(work, `run-${which}.db`);
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbFile}${suffix}`, { force: true });
    copyFileSync(which === 'new' ? template : oldTemplate, dbFile);
    forgetVaultState();
    const before = smtp.count();
    const r = await runCronToFile(['--config', configFor(dbFile, which), 'run'], env, work, undefined, which === 'new' ? CRON_BIN : bin);
    const renewed = countLines(r.stdout, /^renew h-\d{4}\.side\.example\.org: new ec-p256 key and request/);
    if (r.code !== 0 || renewed !== due) {
      const other = r.stdout.split('\n').filter((l) => l && !/^(renew h-|reminder queued: h-)/.test(l));
      throw new Error(`${which} run: status ${r.code}, ${renewed} renewed; its other lines:\n${other.join('\n').slice(0, 3000)}\n${r.stderr.slice(0, 2000)}`);
    }
    if (smtp.count() - before < due) throw new Error(`${which} run: ${smtp.count() - before} mails received, expected at least ${due}`);
    if (which === 'new') mailsPerRun = smtp.count() - before;
    return r.ms;
  };
  console.log('  warm-up: one run of each');
  await once('new');
  await once('old');
  const withLease: number[] = [];
  const without: number[] = [];
  for (let i = 0; i < RUNS.sideBySide; i++) {
    withLease.push(await once('new'));
    without.push(await once('old'));
  }
  const later = (await execFileP('git', ['-C', REPO, 'rev-list', '--count', `${BASELINE_REF}..HEAD`], { encoding: 'utf8' }).catch(() => ({ stdout: '?' }))).stdout.trim();
  const w = record(`   3a. passtore-cron run, ${SIDE_HOSTS} hosts, ${due} due: this build`, withLease, `${due} keys and requests, ${mailsPerRun} mails (requests and reminders) sent each run; fresh vault copy each`);
  const o = record(`   3b. the same, the build ${BASELINE_REF}`, without, `before the run lease and outbox claims, and ${later} commits before this build; the same pairs in a vault it made itself (it cannot open this build's); alternating with 3a`);
  const ratio = w.median / o.median;
  checks.push({
    name: `run: this build vs ${BASELINE_REF} (info)`,
    measured: `${fmt(w.median)} / ${fmt(o.median)} ms = ${ratio.toFixed(3)}`,
    required: `(≤ ${SIDE_TARGET})`,
    ratio: ratio / SIDE_TARGET,
    verdict: 'info',
    note: `${BASELINE_REF} lacks the lease and claims but also the ${later} commits merged since, so the difference is not theirs alone; the target is checked on their own cost below`,
  });

  // The lease and the claims themselves, in this process on a copy of the same vault: what
  // a run does for them (take and release the lease once, claim each mail it sends).
  const leaseDb = join(work, 'lease.db');
  copyFileSync(template, leaseDb);
  const store = await openStore(`sqlite:${leaseDb}`, undefined);
  const leaseClaims: number[] = [];
  try {
    for (let i = 0; i < RUNS.leaseClaims + 1; i++) {
      for (let m = 0; m < mailsPerRun; m++) await store.queueMail({ dedupeKey: null, recipients: [`hostmaster@${domain}`], subject: `bench ${i}.${m}`, body: 'bench', attachments: [] });
      const ids = (await store.unsentMail()).map((m) => m.id);
      if (ids.length !== mailsPerRun) throw new Error(`lease + claims: ${ids.length} queued mails, expected ${mailsPerRun}`);
      const ms = await timeAsync(async () => {
        const lease = await acquireLease(store, { timeSeconds: 600, waitSeconds: 0 });
        if (!isHeld(lease)) throw new Error('lease + claims: the lease was not taken');
        const now = new Date().toISOString();
        const until = new Date(Date.now() + 300_000).toISOString();
        for (const id of ids) if (!(await store.claimMail(id, 'bench', until, now))) throw new Error(`lease + claims: mail ${id} was not claimed`);
        await lease.release();
      });
      if (i > 0) leaseClaims.push(ms); // the first warms up
      const at = new Date().toISOString();
      for (const id of ids) await store.markMailSent(id, at);
    }
  } finally {
    await store.close();
  }
  const lc = record(`   3e. run lease taken and released + ${mailsPerRun} outbox claims, in process`, leaseClaims, 'acquireLease, store.claimMail per mail, release: what a run of 3a does for them, on a copy of its vault');
  const share = lc.median / w.median;
  checks.push({
    name: 'run lease and outbox claims: their cost in a run',
    measured: `${fmt(lc.median)} of ${fmt(w.median)} ms = ${(100 * share).toFixed(2)}%`,
    required: `≤ ${((SIDE_TARGET - 1) * 100).toFixed(0)}%`,
    ratio: share / (SIDE_TARGET - 1),
    verdict: share <= SIDE_TARGET - 1 ? 'met' : 'MISSED',
  });

  // check while a run holds the lease (held at cron-renewed), and with none.
  const dbFile = join(work, 'run-held.db');
  copyFileSync(template, dbFile);
  forgetVaultState();
  const config = configFor(dbFile);
  const idle: number[] = [];
  for (let i = 0; i < RUNS.checkHeld; i++) idle.push((await runCronToFile(['--config', config, 'check'], env, work)).ms);
  const hold = join(work, 'hold');
  const held = runCronToFile(['--config', config, 'run'], { ...env, PASSTORE_HOLD_AT: 'cron-renewed', PASSTORE_HOLD_FILE: hold }, work);
  const deadline = Date.now() + 120_000;
  while (!existsSync(`${hold}.held`)) {
    if (Date.now() > deadline) throw new Error('the run did not reach cron-renewed');
    await new Promise((r) => setTimeout(r, 50));
  }
  const during: number[] = [];
  try {
    for (let i = 0; i < RUNS.checkHeld; i++) {
      const r = await runCronToFile(['--config', config, 'check'], env, work);
      if (!/^PASSTORE (OK|WARNING|CRITICAL) - /.test(r.stdout)) throw new Error(`check while held: ${r.stdout}${r.stderr}`);
      during.push(r.ms);
    }
  } finally {
    writeFileSync(hold, '');
  }
  const after = await held;
  if (after.code !== 0) throw new Error(`the held run: status ${after.code}\n${after.stdout.slice(0, 2000)}`);
  const checkHeld = record('   3c. passtore-cron check while a run holds the lease', during, 'the run held at its cron-renewed step (PASSTORE_HOLD_AT); spawn → exit');
  const checkIdle = record('   3d. passtore-cron check, no run', idle, 'for reference');
  checks.push({ name: 'check while a run holds the lease', measured: `${fmt(checkHeld.median)} ms`, required: `< ${CHECK_LIMIT_MS} ms`, ratio: checkHeld.median / CHECK_LIMIT_MS, verdict: checkHeld.median < CHECK_LIMIT_MS ? 'met' : 'MISSED' });
  await smtp.close();
  return { withLease: w, without: o, ratio, share, checkHeld, checkIdle };
}

async function main(): Promise<number> {
  const started = performance.now();
  console.log('passtore benchmark: passtore-cron (renew --dry-run over 10,000 certificates vs openssl; a full run deploying to sshd hosts)');
  if (process.getuid?.() !== 0) throw new Error('run as root (part 2 builds network namespaces)');
  // Part 3 makes its own 1,000 pairs; the 10,000 fixtures are for part 1.
  const fixtures = PARTS.has('1') ? await ensureCronFixtures() : undefined;
  if (fixtures) {
    console.log(
      `fixtures: ${fixtures.dir}: ${fixtures.made === 'cached' ? `cached (checked in ${fixtures.seconds.toFixed(1)} s)` : `${fixtures.made} in this run (${fixtures.seconds.toFixed(0)} s)`}; one-time cost when made: keys ${fixtures.keygenSeconds.toFixed(1)} s, certificates ${fixtures.certSeconds.toFixed(1)} s`,
    );
  }
  machineInfo();
  noteLoad('start');
  const benchStart = performance.now();

  const p1 = fixtures ? await part1(fixtures) : undefined;
  noteLoad('after part 1');
  const p2 = PARTS.has('2') ? await part2() : undefined;
  noteLoad('after part 2');
  const p3 = PARTS.has('3') ? await part3() : undefined;
  noteLoad('end');

  console.log('');
  printResults();
  console.log('');
  printLoads();
  if (findings.length) {
    console.log('');
    console.log('notes:');
    findings.forEach((f, i) => console.log(`  ${i + 1}. ${f}`));
  }
  const counted = checks.filter((c) => c.verdict !== 'info');
  const met = counted.filter((c) => c.verdict === 'met').length;
  const total = (performance.now() - started) / 1000;
  const benchOnly = (performance.now() - benchStart) / 1000;
  console.log('');
  const s1 = p1
    ? `renew --dry-run over 10,000 certificates (${p1.due} due): binary ${fmt(p1.binary.median)} ms, in-process ${fmt(p1.inProcess.median)} ms, ` +
      `vs openssl -enddate loop ${fmt(p1.baseline10k)} ms${p1.sampled ? ' (extrapolated from a 1,000-file sample)' : ''} = ${(p1.baseline10k / p1.binary.median).toFixed(0)}× (target ≥ ${TARGET_SPEEDUP}×, ratio ${(p1.baseline10k / p1.binary.median / TARGET_SPEEDUP).toFixed(2)}; in-process ${(p1.baseline10k / p1.inProcess.median).toFixed(0)}×); `
    : 'part 1 not run; ';
  const s2 = p2
    ? `passtore-cron run fetching + deploying ${p2.hosts} certificates to ${p2.hosts} sshd hosts: ${fmt(p2.deploy)} ms = ${fmt(p2.deploy / p2.hosts)} ms per certificate (renew run before it ${fmt(p2.renewRun)} ms) `
    : 'part 2 not run ';
  const s3 = p3
    ? `; run over ${SIDE_HOSTS} hosts ${fmt(p3.withLease.median)} ms, of it the lease and claims ${(100 * p3.share).toFixed(2)}% (target ≤ ${((SIDE_TARGET - 1) * 100).toFixed(0)}%); ${BASELINE_REF} ${fmt(p3.without.median)} ms (ratio ${p3.ratio.toFixed(3)}, info); check while a run holds the lease ${fmt(p3.checkHeld.median)} ms (target < ${CHECK_LIMIT_MS}; idle ${fmt(p3.checkIdle.median)} ms) `
    : '; part 3 not run ';
  console.log(
    `SUMMARY: ${met}/${counted.length} targets met; ${s1}${s2}${s3}` +
      `(nproc ${os.availableParallelism()}, node ${process.version}, ${benchOnly.toFixed(0)} s${fixtures && fixtures.made !== 'cached' ? ` + ${fixtures.seconds.toFixed(0)} s fixtures` : ''}, ${total.toFixed(0)} s in all)`,
  );
  return 0;
}

if (process.argv[2] === '--smtp-sink') {
  await smtpSink(Number(process.argv[3]), process.argv[4]!);
} else {
  await runBench(main);
}
