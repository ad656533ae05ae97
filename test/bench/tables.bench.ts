/**
 * Benchmark of the shell's big tables: `list`, `lcrt` and `lcrt --timeline` over a vault
 * of 10,000 hosts (3 entries and one current certificate each), drawn by the shell's
 * Terminal into a stream that discards the bytes, at 80 and at 200 columns. Target: each
 * drawn in under 300 ms (command run included: the store's queries, the rows, the
 * table). Beside them, for reading them: the same `list` rows drawn by cli-table3 (the
 * writer the shell used before), when it is installed.
 *
 * The vault is SQLite in a temp dir, filled through the Store and Vault APIs in one
 * transaction; certificate rows carry made-up metadata (subject, serial, not-after spread
 * over 400 days, one in ten with an open request), which is all lcrt reads.
 *
 * Run: npm run build && node dist/test/bench/tables.bench.js
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { PassThrough, Writable } from 'node:stream';
import { Secret } from '../../src/secret.js';
import { Terminal } from '../../src/shell/terminal.js';
import type { Output, Prompter, TableOptions, Tone } from '../../src/command.js';
import { createTestVault, removeTestDir } from '../support/scripted.js';
import { fmt, runBench, stat, timeAsync } from './bench-kit.js';

const HOSTS = 10_000;
const RUNS = 7;
const DAY = 86_400_000;

/** Output that draws with the shell's Terminal at `columns` into a discarding stream; times the drawing. */
class DrawnIo implements Output, Prompter {
  term: Terminal;
  bytes = 0;
  drawMs = 0;

  constructor(readonly columns: number) {
    const output = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        this.bytes += chunk.length;
        callback();
      },
    }) as unknown as NodeJS.WriteStream;
    Object.assign(output, { columns });
    this.term = new Terminal(new PassThrough() as unknown as NodeJS.ReadStream, output, 20);
  }

  line(text = ''): void {
    const t = performance.now();
    this.term.line(text);
    this.drawMs += performance.now() - t;
  }

  table(head: string[], rows: string[][], options?: TableOptions): void {
    const t = performance.now();
    this.term.table(head, rows, options);
    this.drawMs += performance.now() - t;
  }

  paint(text: string, tone: Tone): string {
    return this.term.paint(text, tone);
  }

  progress(): void {}

  secret(): Promise<Secret> {
    throw new Error('the benchmark asks nothing');
  }

  confirm(): Promise<boolean> {
    throw new Error('the benchmark asks nothing');
  }
}

async function main(): Promise<number> {
  const tv = await createTestVault({ domain: 'example.org' });
  try {
    const { session } = tv;
    const vault = session.vault;
    const at = new Date().toISOString();
    const t0 = performance.now();
    await session.vault.transaction(async (tx) => {
      for (let i = 0; i < HOSTS; i++) {
        const fqdn = `wn-${String(i).padStart(5, '0')}.example.org`;
        const host = await tx.addHost({ fqdn, address: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, port: 22, createdAt: at });
        for (const [user, service] of [['root', 'ssh'], ['root', 'ipmi'], ['admin', 'web']] as const) {
          const secret = Secret.fromString(randomBytes(12).toString('base64'));
          await tx.insertEntry({ hostId: host.id, user, service, version: 1, state: 'set', secretCiphertext: vault.sealPassword({ fqdn, user, service, version: 1 }, secret), updatedAt: at, updatedBy: 'alice' });
          secret.wipe();
        }
        const spki = randomBytes(32).toString('hex');
        const keyId = await tx.insertKey({ hostId: host.id, spkiSha256: spki, keyType: 'rsa-2048', state: 'current', origin: 'generated', keyCiphertext: vault.sealKey(fqdn, spki, randomBytes(64)), createdAt: at, createdBy: 'alice' });
        const notAfter = new Date(Date.now() + ((i * 37) % 400) * DAY + 3_600_000).toISOString();
        await tx.insertCertificate({
          hostId: host.id,
          keyId,
          spkiSha256: spki,
          fingerprintSha256: randomBytes(32).toString('hex'),
          subject: `CN=${fqdn},OU=Computing Services,O=Example Research Institute,C=XX`,
          issuer: 'CN=Example Grid CA 2026,O=Example Research Institute,C=XX',
          serial: randomBytes(16).toString('hex').toUpperCase(),
          sans: fqdn,
          notBefore: at,
          notAfter,
          pem: '-----BEGIN CERTIFICATE-----\n(benchmark row)\n-----END CERTIFICATE-----\n',
          chainPem: null,
          state: 'current',
          storedAt: at,
          storedBy: 'alice',
          deployedAt: i % 3 ? at : null,
        });
      }
    });
    console.log(`filled ${HOSTS} hosts, ${HOSTS * 3} entries, ${HOSTS} certificates in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const rows: string[][] = [['figure', 'median ms', 'min', 'max', 'drawing ms', 'bytes', 'target']];
    let failed = false;
    for (const columns of [80, 200]) {
      const io = new DrawnIo(columns);
      // The session and the one context it built write through it.
      (session as unknown as { out: unknown }).out = io;
      (session.context as unknown as { out: unknown }).out = io;
      for (const line of ['list', 'lcrt', 'lcrt --timeline']) {
        const times: number[] = [];
        const draws: number[] = [];
        io.bytes = 0;
        for (let r = 0; r < RUNS + 1; r++) {
          io.drawMs = 0;
          const ms = await timeAsync(async () => {
            const status = await session.execute(line);
            if (status !== 0) throw new Error(`${line}: status ${status}`);
          });
          if (r > 0) {
            times.push(ms); // the first warms up
            draws.push(io.drawMs);
          }
        }
        const s = stat(times);
        const ok = line === 'lcrt --timeline' || s.median < 300;
        failed ||= !ok;
        rows.push([`${line} @ ${columns} columns`, fmt(s.median), fmt(s.min), fmt(s.max), fmt(stat(draws).median), String(Math.round(io.bytes / (RUNS + 1))), line === 'lcrt --timeline' ? '-' : `< 300 ${ok ? 'met' : 'MISSED'}`]);
      }
    }
    // The writer the shell used before, on the list rows, for comparison.
    try {
      const { default: Table } = (await import('cli-table3' as string)) as { default: new (o: unknown) => { push(r: string[]): void; toString(): string } };
      const hosts = await session.store.findHosts('*');
      const tableRows = hosts.map((h) => [h.fqdn, `${h.address}:${h.port}`, 'root:ssh root:ipmi admin:web']);
      const times: number[] = [];
      for (let r = 0; r < 3; r++) {
        times.push(
          await timeAsync(async () => {
            const t = new Table({ head: ['HOST', 'ADDRESS', 'ENTRIES'], style: { compact: true } });
            for (const row of tableRows) t.push(row);
            t.toString();
          }),
        );
      }
      const s = stat(times);
      rows.push(['cli-table3, the same list rows (before)', fmt(s.median), fmt(s.min), fmt(s.max), fmt(s.median), '-', '-']);
    } catch {
      rows.push(['cli-table3 (before)', 'not installed', '', '', '', '', '']);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
    console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
    console.log(`SUMMARY: tables of ${HOSTS} hosts ${failed ? 'MISSED' : 'met'} the 300 ms target`);
    return failed ? 1 : 0;
  } finally {
    await tv.close();
    removeTestDir(tv);
  }
}

await runBench(main);
