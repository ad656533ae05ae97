/**
 * `lcrt --timeline` and `passtore-cron check`'s expiry counts: a fixed set of
 * certificates and a fixed clock give this exact chart at 80 columns, plain (NO_COLOR)
 * and coloured; the perf data carry the same numbers; a big bucket is scaled to fit.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Chalk } from 'chalk';
import type { Tone } from '../../src/command.js';
import { renderTimeline, timelineBuckets, timelinePerfData } from '../../src/x509/timeline.js';

const NOW = Date.parse('2026-12-04T10:00:00Z');
const DAY = 86_400_000;

/** Certificates: `[how many, days from NOW]`; hosts h0, h1, … in order. */
function certs(spec: Array<[number, number]>): Array<{ fqdn: string; notAfter: string }> {
  const out: Array<{ fqdn: string; notAfter: string }> = [];
  for (const [n, days] of spec) for (let i = 0; i < n; i++) out.push({ fqdn: `h${out.length}.example.org`, notAfter: new Date(NOW + days * DAY).toISOString() });
  return out;
}

const SITE = certs([[3, -5], [2, 3], [5, 10], [40, 20], [1, 60], [7, 100], [30, 150], [2, 400], [1, 800]]);
const RENEWING = new Set(['h5.example.org', 'h6.example.org', 'h12.example.org']);
const plain = (text: string) => text;

const SNAPSHOT = `Expiring per week, then per month (one mark a certificate)
expired        3  xxx
12-04..12-10   2  ##
12-11..12-17   5  ###++
12-18..12-24  40  #######################################+
12-25..12-31   0
01-01..01-07   0
01-08..01-14   0
01-15..01-21   0
01-22..01-28   0
01-29..02-04   1  =
02-05..02-11   0
02-12..02-18   0
02-19..02-25   0
02-26..03-04   0
2027-03        7  =======
2027-04        0
2027-05       30  ==============================
2027-06        0
2027-07        0
2027-08        0
2027-09        0
2027-10        0
2027-11        0
2027-12        0
2028-01        2  ==
2028-02        0
later          1  =
x expired  # due within 30 days  + renewal open  = later`;

describe('lcrt --timeline', () => {
  test('snapshot at 80 columns, plain as under NO_COLOR', () => {
    const lines = renderTimeline(timelineBuckets(SITE, RENEWING, NOW, 30), 80, plain, 30);
    assert.equal(lines.join('\n'), SNAPSHOT);
    for (const l of lines) assert.ok(l.length < 80, `fits 80 columns: ${l}`);
  });

  test('coloured: the same marks, each state in its colour', () => {
    const chalk = new Chalk({ level: 1 });
    const paint = (t: string, tone: Tone) => (tone === 'bad' ? chalk.red(t) : tone === 'warn' ? chalk.yellow(t) : chalk.green(t));
    const lines = renderTimeline(timelineBuckets(SITE, RENEWING, NOW, 30), 80, paint, 30);
    assert.equal(lines.join('\n').replace(/\x1b\[[0-9;]*m/g, ''), SNAPSHOT);
    assert.equal(lines[1], `expired        3  ${chalk.red('xxx')}`);
    assert.equal(lines[3], `12-11..12-17   5  ${chalk.yellow('###')}${chalk.green('++')}`);
    assert.equal(lines[10], '01-29..02-04   1  =', 'later than crt_ttl: no colour');
  });

  test('a bucket larger than the room is scaled; every line still fits 80 columns', () => {
    const many = certs([[1000, 2], [10, 40], [1, 70]]);
    const lines = renderTimeline(timelineBuckets(many, new Set(), NOW, 30), 80, plain, 30);
    assert.match(lines[0]!, /one mark about 1[0-9]\.\d certificates/);
    for (const l of lines) assert.ok(l.length < 80, `fits: ${l} (${l.length})`);
    const big = lines.find((l) => l.startsWith('12-04..12-10'))!;
    assert.match(big, /^12-04\.\.12-10  1000  #{50,}$/);
    assert.match(lines.find((l) => l.includes('  10  '))!, /  10  =$/, 'a small non-empty bucket keeps one mark');
  });

  test('the month buckets end at the last certificate; more than twelve months go to later', () => {
    const b = timelineBuckets(certs([[1, 100]]), new Set(), NOW, 30);
    assert.deepEqual(b.map((x) => x.key).slice(-2), ['week13', 'month01']);
    const far = timelineBuckets(certs([[1, 2000]]), new Set(), NOW, 30);
    assert.equal(far.filter((x) => x.kind === 'month').length, 12);
    assert.equal(far.at(-1)!.key, 'later');
  });

  test('check performance data carry the same counts', () => {
    const perf = timelinePerfData(timelineBuckets(SITE, RENEWING, NOW, 30));
    assert.equal(
      perf,
      'week01=2 week02=5 week03=40 week04=0 week05=0 week06=0 week07=0 week08=0 week09=1 week10=0 week11=0 week12=0 week13=0 ' +
        'month01=7 month02=0 month03=30 month04=0 month05=0 month06=0 month07=0 month08=0 month09=0 month10=0 month11=2 month12=0 later=1',
    );
  });
});
