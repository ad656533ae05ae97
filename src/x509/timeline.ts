/**
 * The shape of the coming expiries (`lcrt --timeline`, `passtore-cron check`'s
 * performance data): current certificates counted per week for the next 13 weeks, then
 * per calendar month, by state, and drawn as a bar chart that fits the terminal.
 *
 * Weeks start at today's UTC midnight: week 1 is today and the six days after it. The
 * first month is partial: it starts where week 13 ends. Months run up to the last
 * not-after, at most twelve of them; anything later is counted in one `later` line.
 */
import type { Tone } from '../command.js';

/** A certificate's state on the chart: expired, due (within crt_ttl, no open request), renewing (open request), ok. */
export type TimelineState = 'expired' | 'due' | 'renewing' | 'ok';

export const STATES: readonly TimelineState[] = ['expired', 'due', 'renewing', 'ok'];

/** One line of the chart. */
export interface TimelineBucket {
  /** `expired`, `week`, `month` or `later`. */
  kind: 'expired' | 'week' | 'month' | 'later';
  label: string;
  /** Perf-data name: expired, week01…week13, month01…, later. */
  key: string;
  counts: Record<TimelineState, number>;
}

export interface TimelineInput {
  fqdn: string;
  notAfter: string;
}

const DAY = 86_400_000;
const WEEKS = 13;
const MAX_MONTHS = 12;
/** Characters of each state's bar: told apart without colour too. */
const BAR: Record<TimelineState, string> = { expired: 'x', due: '#', renewing: '+', ok: '=' };
const TONE: Record<TimelineState, Tone | undefined> = { expired: 'bad', due: 'warn', renewing: 'good', ok: undefined };

const zero = (): Record<TimelineState, number> => ({ expired: 0, due: 0, renewing: 0, ok: 0 });
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * Counts certificates per bucket. `renewing` holds the hosts with an open request;
 * `crtTtl` the days before not-after from which a certificate is due.
 */
export function timelineBuckets(certs: readonly TimelineInput[], renewing: ReadonlySet<string>, now: number, crtTtl: number): TimelineBucket[] {
  const today = Math.floor(now / DAY) * DAY;
  const buckets: TimelineBucket[] = [{ kind: 'expired', label: 'expired', key: 'expired', counts: zero() }];
  for (let w = 0; w < WEEKS; w++) {
    const from = today + w * 7 * DAY;
    buckets.push({ kind: 'week', label: `${iso(from).slice(5)}..${iso(from + 6 * DAY).slice(5)}`, key: `week${String(w + 1).padStart(2, '0')}`, counts: zero() });
  }
  const weeksEnd = today + WEEKS * 7 * DAY;
  const last = certs.reduce((m, c) => Math.max(m, Date.parse(c.notAfter)), 0);
  const monthStarts: number[] = [];
  const first = new Date(weeksEnd);
  for (let m = 0; m < MAX_MONTHS; m++) {
    const start = m === 0 ? weeksEnd : Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + m, 1);
    if (start > last) break;
    monthStarts.push(start);
    buckets.push({ kind: 'month', label: iso(start).slice(0, 7), key: `month${String(m + 1).padStart(2, '0')}`, counts: zero() });
  }
  const laterFrom = Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + MAX_MONTHS, 1);
  const later: TimelineBucket = { kind: 'later', label: 'later', key: 'later', counts: zero() };
  if (last >= laterFrom) buckets.push(later);
  for (const c of certs) {
    const t = Date.parse(c.notAfter);
    const state: TimelineState = t <= now ? 'expired' : renewing.has(c.fqdn) ? 'renewing' : t - now <= crtTtl * DAY ? 'due' : 'ok';
    let bucket: TimelineBucket;
    if (t <= now) bucket = buckets[0]!;
    else if (t < weeksEnd) bucket = buckets[1 + Math.floor((t - today) / (7 * DAY))]!;
    else if (t >= laterFrom) bucket = later;
    else {
      let m = monthStarts.length - 1;
      while (m > 0 && t < monthStarts[m]!) m--;
      bucket = buckets[1 + WEEKS + m]!;
    }
    bucket.counts[state]++;
  }
  return buckets;
}

function total(b: TimelineBucket): number {
  return b.counts.expired + b.counts.due + b.counts.renewing + b.counts.ok;
}

/**
 * Draws the chart in `width` columns (the last column left free, so no line wraps): a
 * label, the count, and a bar scaled to the largest count, one character per state
 * (`x` expired, `#` due, `+` renewing, `=` later than crt_ttl), each painted in its tone.
 */
export function renderTimeline(buckets: readonly TimelineBucket[], width: number, paint: (text: string, tone: Tone) => string, crtTtl: number): string[] {
  const labelWidth = Math.max(...buckets.map((b) => b.label.length));
  const totals = buckets.map(total);
  const countWidth = Math.max(...totals.map((t) => String(t).length));
  const room = Math.max(width - 1 - labelWidth - countWidth - 4, 10);
  const max = Math.max(...totals, 1);
  const scale = max <= room ? 1 : room / max;
  const lines = buckets.map((b, i) => {
    const n = totals[i]!;
    const length = n === 0 ? 0 : Math.max(1, Math.round(n * scale));
    let bar = '';
    let done = 0;
    let cum = 0;
    for (const s of STATES) {
      if (b.counts[s] === 0) continue;
      cum += b.counts[s];
      // Cumulative rounding keeps the bar's length exact; a state present gets a character.
      const end = Math.max(Math.round((cum * length) / n), done + 1);
      const part = BAR[s].repeat(Math.min(end, length) - done);
      done += part.length;
      const tone = TONE[s];
      bar += part && tone ? paint(part, tone) : part;
    }
    return `${b.label.padEnd(labelWidth)}  ${String(n).padStart(countWidth)}  ${bar}`.trimEnd();
  });
  const scaleNote = scale === 1 ? 'one mark a certificate' : `one mark about ${(1 / scale).toFixed(1)} certificates`;
  lines.unshift(`Expiring per week, then per month (${scaleNote})`);
  lines.push(`${paint('x', 'bad')} expired  ${paint('#', 'warn')} due within ${crtTtl} days  ${paint('+', 'good')} renewal open  = later`);
  return lines;
}

/** Nagios performance data for the same counts, after the expired: `week01=N … week13=N month01=N … later=N`. */
export function timelinePerfData(buckets: readonly TimelineBucket[]): string {
  return buckets.filter((b) => b.kind !== 'expired').map((b) => `${b.key}=${total(b)}`).join(' ');
}
