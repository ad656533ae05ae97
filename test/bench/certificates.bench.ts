/**
 * Benchmark of passtore's certificate handling at site scale, against the traditional
 * shell way with one openssl process per file. Not a test: build with `npx tsc -p .`,
 * run `node dist/test/bench/certificates.bench.js`. Prints medians of wall time (with
 * this process's CPU time beside passtore's figures: on a shared machine it moves much
 * less than wall time, and the load averages seen are printed too), each speed-up
 * against its target (ratio = measured / required; ≥ 1 meets a "× faster" target, and
 * for "< 500 ms" ratio = median / 500, < 1 meets it), and a SUMMARY line.
 *
 * Fixtures (cert-fixtures.ts) are generated once into /var/tmp/passtore-bench-fixtures
 * ($PASSTORE_BENCH_FIXTURES) and reused: 5,000 + 5,000 EC P-256 host pairs, a copied
 * 1,000-pair subset, and 1,000 RSA-2048 pairs. The bulk sets use EC P-256 keys because
 * RSA-2048 keys take ~0.1 s each to generate on 2 cores (~17 min for 10,000); the RSA set
 * shows what the key type (passtore's default is rsa-2048) changes.
 *
 * Figures:
 *  2. `importcert DIR` (tv.run, a real Session on a fresh SQLite vault, scrypt 2^14) of
 *     5,000 pairs = 10,000 files, and of the 1,000-pair subset (ratio 5,000/1,000 ≈ 5
 *     when linear), against pairing by openssl: per file `openssl x509 -noout -pubkey`
 *     (certificates) or `openssl pkey -pubout` (keys), SHA-256 of the output, join by
 *     hash; sequential execFile with argument vectors, on a 1,000-file sample (500 pairs),
 *     extrapolated linearly to 10,000 files. Target: passtore ≥ 50× faster. The runs go
 *     in rounds (1,000; 5,000; 5,000 with SQLite statements reused — a what-if sizing a
 *     finding; RSA 1,000; a third of the openssl sample) so that each series sees the
 *     same machine load. Also timed: importcert's scanDirectory and pairByKey phases, and
 *     the classic RSA recipe (`x509 -modulus` / `rsa -modulus`) on a 500-file sample.
 *  3. `lcrt *` (session.execute into a ScriptedIo) and the expiry scan
 *     store.expiringCertificates(now + 30 days) over a vault holding 10,000 current
 *     certificates (both 5,000 EC sets imported into one vault), against a loop of
 *     `openssl x509 -noout -enddate` over the same 10,000 certificate files (1,000-file
 *     sample, extrapolated). Target: ≥ 100× faster, and the scan itself < 500 ms.
 *
 *  4. PKCS#12 and the key proof (issue 12): `importcert` of the 5,000 EC pairs where a
 *     third arrive as PKCS#12 files (OpenSSL 3's default: PBES2 AES-256, SHA-256 MAC,
 *     2,048 iterations; one passphrase, typed once and kept for the run) against the same
 *     pairs as PEM (ratio); and the proof every key read now gets (proveKey: for EC d·G
 *     compared with the key's public point, for RSA its components checked) timed on its
 *     own over the 5,000 EC and 1,000 RSA keys, as a share of importcert's time for the
 *     same keys (target ≤ 10%; the CPU share beside it), the EC one alternated with the
 *     proof it replaced (a signature made and verified).
 *     The PKCS#12 files are made once with openssl into the fixture root (ec-5000-p12).
 *     BENCH_ONLY=4 runs this part alone.
 *
 * BENCH_FULL_BASELINE=1 runs the openssl loops over all 10,000 files instead of a sample
 * (adds 5–15 min: 12–50 ms per openssl process here, depending on the machine's load). Temp vaults are removed at the end, on failure and on Ctrl-C; the
 * fixtures are kept.
 */
import { createHash, createPrivateKey, sign, verify, type KeyObject } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { pairByKey, scanDirectory } from '../../src/x509/import.js';
import { proveKey } from '../../src/x509/keys.js';
import { createTestVault, removeTestDir, type TestVault } from '../support/scripted.js';
import { commandOutput, DAY, disposedAtEnd, execFileP, fmt, fsType, noteLoad, pool, printLoadAtStart, printLoads, printMachine, progressPrinter, results, runBench, sqliteVersion, stat, timeAsync, type Check, type Stat } from './bench-kit.js';
import { defaultFixtureRoot, ensureFixtures, type FixtureSet, type Fixtures } from './cert-fixtures.js';

const FULL_BASELINE = process.env.BENCH_FULL_BASELINE === '1';
/** The EC proof importcert made before d·G (issue 12): a signature made and verified. */
function signAndVerify(key: KeyObject): void {
  const message = Buffer.from('passtore: proof that this private key works');
  if (!verify('sha256', message, key, sign('sha256', message, key))) throw new Error('a fixture key failed the proof');
}

/** The passphrase of the PKCS#12 files of part 4 (given to openssl by environment). */
const PKCS12_PASS = 'bench pkcs12 passphrase';

const RUNS = {
  /** Rounds of: import 1,000; import 5,000; the same with statements reused; RSA 1,000. */
  rounds: 3,
  phases: 3,
  lcrt: 5,
  scan: 9,
};
/** Files (certificates and keys) in the openssl pairing sample; pairs = half. */
const PAIRING_SAMPLE = 1000;
const RSA_PAIRING_SAMPLE = 500;
const ENDDATE_SAMPLE = 1000;

// ---------------------------------------------------------------------------------------
// Figures and targets

/** A target: met or not; `info` ones are shown, not counted in the summary. */
interface TargetCheck extends Check {
  met: boolean;
  info?: boolean;
}

const { rows, checks, record, print } = results<TargetCheck>();

/** CPU milliseconds (user + system) of this process so far. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function speedTarget(name: string, baselineMs: number, passtoreMs: number, required: number, note?: string): TargetCheck {
  const speedup = baselineMs / passtoreMs;
  const met = speedup >= required;
  const c = { name, measured: `${speedup.toFixed(0)}× faster`, required: `≥ ${required}×`, ratio: speedup / required, met, verdict: met ? 'met' : 'MISSED', note };
  checks.push(c);
  return c;
}

function limitTarget(name: string, ms: number, limitMs: number, note?: string): TargetCheck {
  const met = ms < limitMs;
  const c = { name, measured: `${fmt(ms)} ms`, required: `< ${limitMs} ms`, ratio: ms / limitMs, met, verdict: met ? 'met' : 'MISSED', note };
  checks.push(c);
  return c;
}

/** "27% less" / "12% more": `a` against `b`. */
const change = (a: number, b: number): string => (a <= b ? `${(100 * (1 - a / b)).toFixed(0)}% less` : `${(100 * (a / b - 1)).toFixed(0)}% more`);

/** A fresh vault on SQLite in a temp dir, closed and removed at the end. */
async function freshVault(): Promise<TestVault & { dispose(): Promise<void> }> {
  const tv = await createTestVault();
  return disposedAtEnd(tv, async () => {
    await tv.close().catch(() => undefined);
    removeTestDir(tv);
  });
}

// ---------------------------------------------------------------------------------------
// passtore side

/** One `importcert DIR` into `tv`; checks the status and the count added. */
async function importInto(tv: TestVault, set: FixtureSet): Promise<number> {
  tv.io.lines.length = 0;
  let status = -1;
  const ms = await timeAsync(async () => {
    status = await tv.run(`importcert ${set.dir}`);
  });
  const out = tv.io.text();
  const want = `${set.pairs.length * 2} files read; ${set.pairs.length} pairs added`;
  if (status !== 0 || !out.includes(want)) throw new Error(`importcert ${set.name}: status ${status}, expected '${want}'; output:\n${out.slice(0, 1500)}`);
  return ms;
}

/** One importcert of `set` into a fresh vault: wall and CPU milliseconds. */
async function importFresh(set: FixtureSet, label = ''): Promise<{ ms: number; cpu: number }> {
  const tv = await freshVault();
  try {
    const c0 = cpuMs();
    const ms = await importInto(tv, set);
    const cpu = cpuMs() - c0;
    if ((await tv.session.store.countHosts()) !== set.pairs.length) throw new Error(`importcert ${set.name}: host count is not ${set.pairs.length}`);
    console.log(`    importcert ${set.name}${label ? ` (${label})` : ''}: ${fmt(ms)} ms (CPU ${fmt(cpu)} ms)`);
    return { ms, cpu };
  } finally {
    await tv.dispose();
  }
}

/**
 * For the what-if figure: src/storage/sqlite-driver.ts prepares every statement anew on
 * each call. on() wraps better-sqlite3's prepare, in this process only, so that each
 * connection reuses its statements; off() restores it. passtore's code is unchanged.
 */
function statementReuse(): { on(): void; off(): void } {
  const prepare = Database.prototype.prepare;
  const statements = new WeakMap<object, Map<string, Database.Statement>>();
  const memo = function (this: Database.Database, sql: string): Database.Statement {
    let m = statements.get(this);
    if (!m) statements.set(this, (m = new Map()));
    let st = m.get(sql);
    if (!st) m.set(sql, (st = prepare.call(this, sql)));
    return st;
  };
  return {
    on: () => {
      (Database.prototype as { prepare: unknown }).prepare = memo;
    },
    off: () => {
      Database.prototype.prepare = prepare;
    },
  };
}

// ---------------------------------------------------------------------------------------
// The traditional way: one openssl process per file

type Kind = 'cert' | 'key';

interface SampleFile {
  path: string;
  kind: Kind;
}

/** The first pairs/2 pairs' files, certificates and keys interleaved. */
function pairingSample(set: FixtureSet, files: number): SampleFile[] {
  return set.pairs.slice(0, files / 2).flatMap((p) => [
    { path: join(set.dir, p.certFile), kind: 'cert' as const },
    { path: join(set.dir, p.keyFile), kind: 'key' as const },
  ]);
}

/**
 * Pairs files by public key with openssl, one process per file; run() takes a chunk.
 * The kind of each file is read from its BEGIN line in-process (free here; a shell
 * script would need grep or a try-and-fall-back).
 * `spki`: `x509 -noout -pubkey` / `pkey -pubout` (any key type); `modulus`:
 * `x509 -noout -modulus` / `rsa -noout -modulus` (the classic RSA recipe).
 */
class OpensslPairing {
  #byHash = new Map<string, { cert?: string; key?: string }>();
  #ms = 0;
  /** Time and count per kind of file. */
  #per = { cert: { ms: 0, n: 0 }, key: { ms: 0, n: 0 } };

  constructor(private readonly variant: 'spki' | 'modulus') {}

  /** Runs openssl on `files` (sequentially); returns the time this took. */
  async run(files: SampleFile[]): Promise<number> {
    const t0 = performance.now();
    for (const f of files) {
      const head = readFileSync(f.path, { encoding: 'latin1' }).slice(0, 40);
      const isCert = head.includes('CERTIFICATE');
      const args = isCert
        ? ['x509', '-noout', this.variant === 'spki' ? '-pubkey' : '-modulus', '-in', f.path]
        : this.variant === 'spki'
          ? ['pkey', '-pubout', '-in', f.path]
          : ['rsa', '-noout', '-modulus', '-in', f.path];
      const t1 = performance.now();
      const { stdout } = await execFileP('openssl', args, { encoding: 'utf8' });
      const per = this.#per[isCert ? 'cert' : 'key'];
      per.ms += performance.now() - t1;
      per.n++;
      const h = createHash('sha256').update(stdout).digest('hex');
      const slot = this.#byHash.get(h) ?? {};
      if (isCert) slot.cert = f.path;
      else slot.key = f.path;
      this.#byHash.set(h, slot);
    }
    const ms = performance.now() - t0;
    this.#ms += ms;
    return ms;
  }

  /** Total time so far, and the pairs joined by hash. */
  result(): { ms: number; pairs: number; perFile: string } {
    let pairs = 0;
    for (const s of this.#byHash.values()) if (s.cert && s.key) pairs++;
    const avg = (k: 'cert' | 'key') => fmt(this.#per[k].ms / Math.max(1, this.#per[k].n));
    return { ms: this.#ms, pairs, perFile: `${avg('cert')} ms per certificate, ${avg('key')} ms per key` };
  }
}

/** `openssl x509 -noout -enddate` per certificate; returns the time and the dates read. */
async function opensslEnddates(paths: string[]): Promise<{ ms: number; dates: Map<string, number> }> {
  const t0 = performance.now();
  const dates = new Map<string, number>();
  for (const p of paths) {
    const { stdout } = await execFileP('openssl', ['x509', '-noout', '-enddate', '-in', p], { encoding: 'utf8' });
    const m = /^notAfter=(.+)$/m.exec(stdout);
    if (!m) throw new Error(`openssl x509 -enddate on ${p}: ${stdout}`);
    dates.set(p, Date.parse(m[1]!));
  }
  return { ms: performance.now() - t0, dates };
}

// ---------------------------------------------------------------------------------------

function machineInfo(f: Fixtures): void {
  printMachine();
  console.log(`node ${process.version} (crypto: OpenSSL ${process.versions.openssl}), SQLite ${sqliteVersion()} (better-sqlite3), ${commandOutput(['openssl', 'version'])}`);
  printLoadAtStart();
  console.log(`vaults in ${os.tmpdir()} (${fsType(os.tmpdir())}), PASSTORE_SCRYPT_LOG_N=${process.env.PASSTORE_SCRYPT_LOG_N}; fixtures in ${f.root} (${fsType(f.root)})`);
}

function describeFixtures(f: Fixtures): void {
  for (const s of Object.values(f.sets)) {
    const due = s.pairs.filter((p) => Date.parse(p.notAfter) < Date.now() + 30 * DAY).length;
    const made = s.copiedFrom ? `copied from ${s.copiedFrom.name}` : `one-time cost: keys ${s.keygenSeconds.toFixed(1)} s, certificates ${s.certSeconds.toFixed(1)} s`;
    console.log(`  ${s.name.padEnd(10)} ${String(s.pairs.length).padStart(5)} pairs (${s.pairs.length * 2} files), ${s.keyType}, ${due} due within 30 days; certificates made ${s.certsGeneratedAt.slice(0, 16)}Z; ${made}`);
  }
}

async function main(): Promise<number> {
  const started = performance.now();
  console.log('passtore benchmark: certificates (importcert, lcrt, expiry scan) against openssl per file');
  console.log(`fixtures: ${defaultFixtureRoot()}`);
  const fixtures = await ensureFixtures();
  console.log(
    fixtures.generated.length ? `fixtures generated in this run (${fixtures.seconds.toFixed(0)} s): ${fixtures.generated.join('; ')}` : `fixtures: all cached (checked in ${fixtures.seconds.toFixed(1)} s)`,
  );
  describeFixtures(fixtures);
  machineInfo(fixtures);
  const { ec5000, ec1000, ec5000b, rsa1000 } = fixtures.sets;
  const benchStart = performance.now();
  if (process.env.BENCH_ONLY === '4') {
    await pkcs12AndProof(fixtures);
    console.log('');
    print({ cpuColumn: true });
    console.log('');
    printLoads();
    return 0;
  }

  // ---- 2. importcert ------------------------------------------------------------------
  noteLoad('start');
  console.log('\n== 2. importcert');
  // The runs are interleaved in rounds (1,000; 5,000; 5,000 with statements reused;
  // RSA 1,000; a third of the openssl sample), so that every series sees the same
  // machine: on a shared machine the load drifts during a run.
  const cached = statementReuse();
  const times = { t1000: [] as number[], t5000: [] as number[], whatIf: [] as number[], rsa: [] as number[] };
  const cpu = { t1000: [] as number[], t5000: [] as number[], whatIf: [] as number[], rsa: [] as number[] };
  const run = async (series: keyof typeof times, set: FixtureSet, label?: string) => {
    const r = await importFresh(set, label);
    times[series].push(r.ms);
    cpu[series].push(r.cpu);
  };
  const sample = pairingSample(ec5000, FULL_BASELINE ? ec5000.pairs.length * 2 : PAIRING_SAMPLE);
  const pairing = new OpensslPairing('spki');
  await importFresh(ec1000); // warm-up (JIT, page cache), not counted
  for (let r = 0; r < RUNS.rounds; r++) {
    console.log(`  round ${r + 1}/${RUNS.rounds}:`);
    await run('t1000', ec1000);
    await run('t5000', ec5000);
    cached.on();
    try {
      await run('whatIf', ec5000, 'statements reused');
    } finally {
      cached.off();
    }
    await run('rsa', rsa1000);
    const chunk = sample.slice(Math.floor((r * sample.length) / RUNS.rounds), Math.floor(((r + 1) * sample.length) / RUNS.rounds));
    const ms = await pairing.run(chunk);
    console.log(`    openssl pairing, ${chunk.length} files: ${fmt(ms)} ms`);
  }
  const t1000 = record('2. importcert 1,000 pairs (2,000 files), EC', times.t1000, 'fresh SQLite vault each run', cpu.t1000);
  const t5000 = record('2. importcert 5,000 pairs (10,000 files), EC', times.t5000, 'fresh SQLite vault each run', cpu.t5000);
  const tRsa = record('   2a. importcert 1,000 pairs, RSA-2048', times.rsa, "key-type cross-check (rsa-2048 is passtore's default): compare with the EC 1,000-pair figure", cpu.rsa);

  // Where the time goes: the two in-memory phases importcert runs before its transaction.
  const scanTimes: number[] = [];
  const pairTimes: number[] = [];
  const scanCpu: number[] = [];
  const pairCpu: number[] = [];
  for (let i = 0; i < RUNS.phases; i++) {
    let scan: Awaited<ReturnType<typeof scanDirectory>> | undefined;
    let c0 = cpuMs();
    scanTimes.push(await timeAsync(async () => (scan = await scanDirectory(ec5000.dir))));
    scanCpu.push(cpuMs() - c0);
    c0 = cpuMs();
    pairTimes.push(await timeAsync(async () => pairByKey(scan!)));
    pairCpu.push(cpuMs() - c0);
  }
  const scanStat = record('   2b. of which scanDirectory (read + parse 10,000 files)', scanTimes, 'src/x509/import.ts, reader threads (CPU: all threads)', scanCpu);
  const pairStat = record('   2c. of which pairByKey (5,000 pairs)', pairTimes, 'src/x509/import.ts, in-process', pairCpu);
  const rest = t5000.median - scanStat.median - pairStat.median;
  const restCpu = stat(cpu.t5000).median - stat(scanCpu).median - stat(pairCpu).median;
  rows.push({
    figure: '   2d. the rest (fingerprint checks, transaction, audit)',
    stat: { median: rest, min: rest, max: rest, n: 0 },
    cpu: { median: restCpu, min: restCpu, max: restCpu, n: 0 },
    note: 'derived: 5,000-pair median − 2b − 2c',
  });
  const whatIf = record(
    '   2e. WHAT-IF: 5,000 pairs, SQLite statements reused',
    times.whatIf,
    `better-sqlite3's prepare() memoised per connection by this benchmark, in this process (passtore's code unchanged); against figure 2: wall ${change(stat(times.whatIf).median, t5000.median)}, CPU ${change(stat(cpu.whatIf).median, stat(cpu.t5000).median)}`,
    cpu.whatIf,
  );

  const { ms: pairingMs, pairs: joined, perFile } = pairing.result();
  if (joined !== sample.length / 2) throw new Error(`openssl pairing joined ${joined} pairs, expected ${sample.length / 2}`);
  const pairing10k = (pairingMs * (ec5000.pairs.length * 2)) / sample.length;
  record(
    `2f. openssl pairing, ${sample.length} files${FULL_BASELINE ? '' : ' (sample)'}`,
    [pairingMs],
    `x509 -noout -pubkey / pkey -pubout, in ${RUNS.rounds} chunks between the import rounds; per file ${fmt(pairingMs / sample.length)} ms (${perFile}); joined ${joined} pairs by SHA-256 of the public key`,
  );
  if (!FULL_BASELINE) record('2g. openssl pairing, 10,000 files EXTRAPOLATED', [pairing10k], `linear: ${sample.length}-file sample × ${(ec5000.pairs.length * 2) / sample.length}`);

  noteLoad('before openssl RSA pairing');
  console.log(`  openssl pairing, RSA modulus recipe: ${RSA_PAIRING_SAMPLE}-file sample …`);
  const rsaSample = pairingSample(rsa1000, RSA_PAIRING_SAMPLE);
  const rsaPairing = new OpensslPairing('modulus');
  const rsaMs = await rsaPairing.run(rsaSample);
  if (rsaPairing.result().pairs !== rsaSample.length / 2) throw new Error(`openssl modulus pairing joined ${rsaPairing.result().pairs} pairs, expected ${rsaSample.length / 2}`);
  record(
    `   2h. openssl RSA modulus pairing, ${rsaSample.length} files (sample)`,
    [rsaMs],
    `x509 -noout -modulus / rsa -noout -modulus on rsa-1000; per file ${fmt(rsaMs / rsaSample.length)} ms (${rsaPairing.result().perFile}); 10,000 files extrapolated: ${fmt((rsaMs * 10_000) / rsaSample.length)} ms`,
  );

  const linear = t5000.median / t1000.median;
  const linearCpu = stat(cpu.t5000).median / stat(cpu.t1000).median;
  speedTarget(
    '2. importcert 5,000 pairs vs openssl pairing 10,000 files',
    pairing10k,
    t5000.median,
    50,
    `${FULL_BASELINE ? 'measured' : 'baseline extrapolated from a sample'}: ${fmt(pairing10k)} ms vs ${fmt(t5000.median)} ms; passtore also verifies, seals and stores every pair and writes 5,000 audit records, the baseline only pairs`,
  );
  checks.push({
    name: '2. linearity: importcert 5,000 / 1,000 pairs (info)',
    measured: `${linear.toFixed(2)}×`,
    required: '≈ 5× if linear',
    ratio: linear / 5,
    met: true,
    info: true,
    verdict: linear > 6 ? 'SUPERLINEAR' : linear < 4 ? 'noisy' : 'linear',
    note: `${fmt(t5000.median)} ms / ${fmt(t1000.median)} ms wall; in CPU time ${fmt(stat(cpu.t5000).median)} / ${fmt(stat(cpu.t1000).median)} ms = ${linearCpu.toFixed(2)}×; 4–6× reads as linear`,
  });

  noteLoad('after openssl pairing');
  console.log('\n== 3. lcrt * and the expiry scan over 10,000 certificates');
  const tv = await freshVault();
  let c0 = cpuMs();
  const setupA = await importInto(tv, ec5000);
  const setupACpu = cpuMs() - c0;
  c0 = cpuMs();
  const setupB = await importInto(tv, ec5000b);
  const setupBCpu = cpuMs() - c0;
  record('   3x. importcert 5,000 pairs into an empty vault (setup)', [setupA], 'setup of the 10,000-certificate vault', [setupACpu]);
  record('   3y. importcert 5,000 more into a vault of 5,000 (setup)', [setupB], 'same size, other hosts: shows whether import slows as the vault grows (compare CPU ms with 3x)', [setupBCpu]);
  const store = tv.session.store;
  const all = [...ec5000.pairs, ...ec5000b.pairs];
  const current = await store.currentCertificates('*');
  if (current.length !== 10_000) throw new Error(`vault holds ${current.length} current certificates, not 10,000`);

  const crtTtl = tv.config.crtTtl;
  const lcrtOnce = async (): Promise<number> => {
    tv.io.lines.length = 0;
    let status = -1;
    const ms = await timeAsync(async () => {
      status = await tv.session.execute('lcrt *');
    });
    const nowMs = Date.now();
    const soon = all.filter((p) => Math.floor((Date.parse(p.notAfter) - nowMs) / DAY) <= crtTtl).length;
    const want = `10000 certificates: 0 expired, ${soon} within ${crtTtl} days; 0 open requests`;
    if (status !== 0 || tv.io.lines.at(-1) !== want || tv.io.lines.length !== 10_002) {
      throw new Error(`lcrt * gave status ${status}, ${tv.io.lines.length} lines, last '${tv.io.lines.at(-1)}' (expected '${want}')`);
    }
    return ms;
  };
  await lcrtOnce(); // warm-up
  const lcrtTimes: number[] = [];
  const lcrtCpu: number[] = [];
  for (let i = 0; i < RUNS.lcrt; i++) {
    const c0 = cpuMs();
    lcrtTimes.push(await lcrtOnce());
    lcrtCpu.push(cpuMs() - c0);
  }
  const lcrt = record('3. lcrt * (10,000 certificates, ScriptedIo)', lcrtTimes, '10,000 table rows + summary line, checked', lcrtCpu);

  const scanOnce = async (): Promise<{ ms: number; n: number }> => {
    const before = new Date(Date.now() + 30 * DAY).toISOString();
    let n = -1;
    const ms = await timeAsync(async () => {
      n = (await store.expiringCertificates(before)).length;
    });
    const want = all.filter((p) => p.notAfter < before).length;
    if (n !== want) throw new Error(`expiringCertificates gave ${n} certificates, expected ${want}`);
    return { ms, n };
  };
  const first = await scanOnce(); // warm-up
  const scanMs: number[] = [];
  const scanCpuMs: number[] = [];
  for (let i = 0; i < RUNS.scan; i++) {
    const c0 = cpuMs();
    scanMs.push((await scanOnce()).ms);
    scanCpuMs.push(cpuMs() - c0);
  }
  const scan = record('3. expiry scan: store.expiringCertificates(now + 30 d)', scanMs, `${first.n} of 10,000 certificates due, checked against the fixture manifest`, scanCpuMs);
  await tv.dispose();

  const certPaths = FULL_BASELINE
    ? all.map((p, i) => join(i < ec5000.pairs.length ? ec5000.dir : ec5000b.dir, p.certFile))
    : [...ec5000.pairs.slice(0, ENDDATE_SAMPLE / 2).map((p) => join(ec5000.dir, p.certFile)), ...ec5000b.pairs.slice(0, ENDDATE_SAMPLE / 2).map((p) => join(ec5000b.dir, p.certFile))];
  noteLoad('before openssl -enddate');
  console.log(`  openssl x509 -noout -enddate: ${FULL_BASELINE ? 'all 10,000 certificates' : `${certPaths.length}-file sample`} …`);
  const end = await opensslEnddates(certPaths);
  const manifestDates = new Map([...ec5000.pairs.map((p) => [join(ec5000.dir, p.certFile), p.notAfter] as const), ...ec5000b.pairs.map((p) => [join(ec5000b.dir, p.certFile), p.notAfter] as const)]);
  for (const [p, d] of end.dates) {
    if (Math.floor(Date.parse(manifestDates.get(p)!) / 1000) !== Math.floor(d / 1000)) throw new Error(`openssl read notAfter ${new Date(d).toISOString()} from ${p}, manifest says ${manifestDates.get(p)}`);
  }
  const end10k = (end.ms * 10_000) / certPaths.length;
  const dueInSample = [...end.dates.values()].filter((d) => d < Date.now() + 30 * DAY).length;
  record(`3a. openssl x509 -enddate loop, ${certPaths.length} files${FULL_BASELINE ? '' : ' (sample)'}`, [end.ms], `per file ${fmt(end.ms / certPaths.length)} ms; ${dueInSample} due within 30 days in it; dates checked against the manifest`);
  if (!FULL_BASELINE) record('3b. openssl x509 -enddate loop, 10,000 files EXTRAPOLATED', [end10k], `linear: ${certPaths.length}-file sample × ${10_000 / certPaths.length}`);

  const how = FULL_BASELINE ? 'measured' : 'baseline extrapolated from a sample';
  speedTarget('3. lcrt * vs openssl -enddate loop (10,000)', end10k, lcrt.median, 100, `${how}: ${fmt(end10k)} ms vs ${fmt(lcrt.median)} ms`);
  speedTarget('3. expiry scan vs openssl -enddate loop (10,000)', end10k, scan.median, 100, `${how}: ${fmt(end10k)} ms vs ${fmt(scan.median)} ms`);
  limitTarget('3. expiry scan itself', scan.median, 500);

  await pkcs12AndProof(fixtures);
  noteLoad('end');

  // ---- Results ------------------------------------------------------------------------
  console.log('');
  print({ cpuColumn: true });
  console.log('');
  printLoads();
  const counted = checks.filter((c) => !c.info);
  const met = counted.filter((c) => c.met).length;
  const total = (performance.now() - started) / 1000;
  const benchOnly = (performance.now() - benchStart) / 1000;
  console.log('');
  console.log(
    `SUMMARY: ${met}/${counted.length} targets met; importcert 5,000 pairs ${fmt(t5000.median)} ms (${(pairing10k / t5000.median).toFixed(0)}× openssl pairing${FULL_BASELINE ? '' : ', extrapolated'}), ` +
      `1,000 pairs ${fmt(t1000.median)} ms (5k/1k ${linear.toFixed(2)}× wall, ${linearCpu.toFixed(2)}× CPU), RSA 1,000 pairs ${fmt(tRsa.median)} ms, 5,000 with statements reused ${fmt(whatIf.median)} ms; ` +
      `lcrt * ${fmt(lcrt.median)} ms (${(end10k / lcrt.median).toFixed(0)}×), expiry scan ${fmt(scan.median)} ms (${(end10k / scan.median).toFixed(0)}×) over 10,000 certificates ` +
      `(nproc ${os.availableParallelism()}, node ${process.version}, ${benchOnly.toFixed(0)} s${fixtures.generated.length ? ` + ${fixtures.seconds.toFixed(0)} s fixture generation` : ''}, ${total.toFixed(0)} s in all)`,
  );
  // A missed target is a finding, not a failure of the run.
  return 0;
}

await runBench(main);

// ---------------------------------------------------------------------------------------
// 4. PKCS#12 and the key proof


/** ec-5000 with every third pair as one PKCS#12 file (made once with openssl, cached). */
async function mixedSet(root: string, from: FixtureSet): Promise<{ dir: string; files: number; p12: number }> {
  const dir = join(root, 'ec-5000-p12');
  const manifest = join(root, 'ec-5000-p12.json');
  const want = { from: from.certsGeneratedAt, pairs: from.pairs.length };
  if (existsSync(manifest) && existsSync(dir)) {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as typeof want & { files: number; p12: number };
    if (m.from === want.from && m.pairs === want.pairs) return { dir, files: m.files, p12: m.p12 };
  }
  rmSync(dir, { recursive: true, force: true });
  const p12 = from.pairs.filter((_, i) => i % 3 === 0).length;
  const env = { ...process.env, BENCH_P12_PASS: PKCS12_PASS };
  await pool(
    from.pairs.length,
    4,
    async (i) => {
      const p = from.pairs[i]!;
      for (const f of [p.certFile, p.keyFile]) mkdirSync(dirname(join(dir, f)), { recursive: true });
      if (i % 3 !== 0) {
        copyFileSync(join(from.dir, p.certFile), join(dir, p.certFile));
        copyFileSync(join(from.dir, p.keyFile), join(dir, p.keyFile));
        return;
      }
      await execFileP('openssl', ['pkcs12', '-export', '-inkey', join(from.dir, p.keyFile), '-in', join(from.dir, p.certFile), '-passout', 'env:BENCH_P12_PASS', '-out', join(dir, `${p.certFile}.p12`)], { env });
    },
    progressPrinter(`ec-5000-p12: ${p12} PKCS#12 files with openssl`, from.pairs.length),
  );
  const files = from.pairs.length * 2 - p12;
  writeFileSync(manifest, JSON.stringify({ ...want, files, p12 }));
  return { dir, files, p12 };
}

async function pkcs12AndProof(fixtures: Fixtures): Promise<void> {
  const { ec5000, rsa1000 } = fixtures.sets;
  console.log('\n== 4. PKCS#12 and the key proof');
  const mixed = await mixedSet(fixtures.root, ec5000);
  const series = { pem: [] as number[], p12: [] as number[], rsa: [] as number[] };
  const cpu = { pem: [] as number[], p12: [] as number[], rsa: [] as number[] };
  const importMixed = async (): Promise<{ ms: number; cpu: number }> => {
    const tv = await freshVault();
    try {
      const c0 = cpuMs();
      let status = -1;
      const prompts = tv.io.prompts.length;
      const ms = await timeAsync(async () => {
        status = await tv.run(`importcert ${mixed.dir}`, PKCS12_PASS, 'yes');
      });
      const used = cpuMs() - c0;
      const out = tv.io.text();
      const want = `${mixed.files} files read; ${ec5000.pairs.length} pairs added`;
      if (status !== 0 || !out.includes(want)) throw new Error(`importcert ec-5000-p12: status ${status}, expected '${want}'; output:\n${out.slice(0, 1500)}`);
      if (tv.io.prompts.length - prompts !== 2) throw new Error(`importcert ec-5000-p12 asked ${tv.io.prompts.length - prompts} questions, not 2 (the passphrase once, then whether to keep it)`);
      console.log(`    importcert ec-5000-p12 (${mixed.p12} PKCS#12 files): ${fmt(ms)} ms (CPU ${fmt(used)} ms)`);
      return { ms, cpu: used };
    } finally {
      await tv.dispose();
    }
  };
  await importMixed(); // warm-up
  for (let r = 0; r < RUNS.rounds; r++) {
    console.log(`  round ${r + 1}/${RUNS.rounds}:`);
    for (const [k, f] of [['pem', () => importFresh(ec5000)], ['p12', importMixed], ['rsa', () => importFresh(rsa1000)]] as const) {
      const x = await f();
      series[k].push(x.ms);
      cpu[k].push(x.cpu);
    }
  }
  const pem = record('4. importcert 5,000 EC pairs as PEM', series.pem, 'as figure 2, in this part\'s rounds', cpu.pem);
  const p12 = record(`4. importcert 5,000 EC pairs, ${mixed.p12} as PKCS#12`, series.p12, 'the passphrase typed once and kept for the run', cpu.p12);
  const rsa = record('4. importcert 1,000 RSA-2048 pairs as PEM', series.rsa, 'as figure 2a', cpu.rsa);
  const ratio = p12.median / pem.median;
  checks.push({ name: '4. PKCS#12 for a third vs all PEM (info)', measured: `${ratio.toFixed(2)}×`, required: 'reported', ratio, met: true, info: true, verdict: 'info', note: `${fmt(p12.median)} ms vs ${fmt(pem.median)} ms; each PKCS#12 file costs four key derivations of 2,048 iterations: the MAC with no password (is it password-less?) in the reader threads, then, in the shell's thread after the passphrase, the MAC (PKCS#12 KDF, one native hash call per iteration) and the key and certificate bags (native PBKDF2)` });

  // The proof alone, over the same keys, in this thread (importcert runs it in its reader
  // threads). For EC, alternated with the proof it replaced (a signature made and
  // verified), run the same way, so that both see the same load.
  noteLoad('key proof');
  for (const [set, label, importStat] of [[ec5000, 'EC P-256', pem], [rsa1000, 'RSA-2048', rsa]] as const) {
    const keys = set.pairs.map((p) => createPrivateKey(readFileSync(join(set.dir, p.keyFile))));
    const ec = label.startsWith('EC');
    const runs = { now: { wall: [] as number[], cpu: [] as number[] }, before: { wall: [] as number[], cpu: [] as number[] } };
    const timeOne = async (which: 'now' | 'before', fn: (k: KeyObject) => void) => {
      const c0 = cpuMs();
      runs[which].wall.push(await timeAsync(async () => {
        for (const k of keys) fn(k);
      }));
      runs[which].cpu.push(cpuMs() - c0);
    };
    for (let i = 0; i < 5; i++) {
      await timeOne('now', (k) => proveKey(k));
      if (ec) await timeOne('before', signAndVerify);
    }
    const proof = record(`4. proveKey over ${keys.length} ${label} keys`, runs.now.wall, ec ? 'd·G compared with the key\'s public point, one thread' : 'the components checked as openssl rsa -check does, one thread', runs.now.cpu);
    const share = (x: Stat) => x.median / importStat.median;
    const cpuShare = (xs: number[]) => stat(xs).median / stat(cpu[ec ? 'pem' : 'rsa']).median;
    const note = (x: Stat, xs: number[]) =>
      `${fmt(x.median)} ms of proof (CPU ${fmt(stat(xs).median)} ms) against ${fmt(importStat.median)} ms of importcert (CPU ${fmt(stat(cpu[ec ? 'pem' : 'rsa']).median)} ms) for the same ${keys.length} keys; CPU share ${(100 * cpuShare(xs)).toFixed(1)}%`;
    const s = share(proof);
    checks.push({ name: `4. key proof share of importcert, ${label}`, measured: `${(100 * s).toFixed(1)}%`, required: '≤ 10%', ratio: s / 0.1, met: s <= 0.1, verdict: s <= 0.1 ? 'met' : 'MISSED', note: note(proof, runs.now.cpu) });
    if (ec) {
      const before = record(`4. the former EC proof (sign + verify) over ${keys.length} keys`, runs.before.wall, 'alternated with the one above', runs.before.cpu);
      checks.push({ name: '4. former EC proof (sign + verify) share (info)', measured: `${(100 * share(before)).toFixed(1)}%`, required: 'reported', ratio: share(before) / 0.1, met: true, info: true, verdict: 'info', note: note(before, runs.before.cpu) });
    }
  }
}
