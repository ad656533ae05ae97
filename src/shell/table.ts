/**
 * A small aligned-column writer for large outputs (10,000 rows in a few milliseconds),
 * fitted to the terminal's width, and a word wrapper for help text.
 *
 * Cells may carry SGR colour sequences (chalk's): widths are measured without them, and
 * a cell shortened to fit keeps its colour and is reset after the ellipsis. When the
 * table is too wide, the columns a command marked as shrinkable are shortened (widest
 * first, never below their header or `minShrunk`), then the ones it marked as droppable
 * are dropped in the order given; if it still does not fit, each row is printed as one
 * block of `HEADER: value` lines, as `kubectl describe` and `ps -o` wrappers do.
 */
import type { TableOptions } from '../command.js';

const SGR = /\x1b\[[0-9;]*m/g;
const GAP = '  ';
/** The narrowest a shortened column gets (with its ellipsis). */
const MIN_SHRUNK = 8;

/** Visible width of a cell: characters, escape sequences not counted. */
export function visibleWidth(s: string): number {
  if (!s.includes('\x1b')) return s.length;
  return s.replace(SGR, '').length;
}

/** `s` cut to `width` visible characters, the last one an ellipsis; colours kept and reset. */
export function truncate(s: string, width: number): string {
  if (visibleWidth(s) <= width) return s;
  if (width <= 0) return '';
  if (!s.includes('\x1b')) return `${s.slice(0, width - 1)}…`;
  let out = '';
  let shown = 0;
  for (let i = 0; i < s.length && shown < width - 1; ) {
    if (s[i] === '\x1b') {
      const m = /^\x1b\[[0-9;]*m/.exec(s.slice(i, i + 16));
      if (m) {
        out += m[0];
        i += m[0].length;
        continue;
      }
    }
    out += s[i++];
    shown++;
  }
  return `${out}…\x1b[0m`;
}

/** Renders a table as text lines; `bold` styles the header. */
export function renderTable(head: string[], rows: string[][], width: number, options: TableOptions = {}, bold: (s: string) => string = (s) => s): string[] {
  const n = head.length;
  const natural = head.map((h) => h.length);
  for (const r of rows) {
    for (let c = 0; c < n; c++) {
      const w = visibleWidth(r[c] ?? '');
      if (w > natural[c]!) natural[c] = w;
    }
  }
  if (options.wrapLast && n > 1) {
    // The other columns keep their width; the last takes what is left, wrapped.
    const before = natural.slice(0, -1).reduce((a, b) => a + b, 0) + GAP.length * (n - 1);
    const room = width - before;
    if (natural[n - 1]! > room && room >= 20) {
      const out: string[] = [];
      const pad = (cells: string[]) => cells.slice(0, -1).map((c, i) => c + ' '.repeat(natural[i]! - visibleWidth(c))).join(GAP) + GAP;
      out.push((pad(head.map((h) => bold(h))) + bold(head[n - 1]!)).trimEnd());
      const blank = ' '.repeat(before);
      for (const r of rows) {
        const parts = wrapWords(r[n - 1] ?? '', room);
        out.push((pad(r) + parts[0]).trimEnd());
        for (const more of parts.slice(1)) out.push(blank + more);
      }
      return out;
    }
  }
  const widths = [...natural];
  let shown = head.map((_, c) => c);
  const total = () => shown.reduce((sum, c) => sum + widths[c]!, 0) + GAP.length * Math.max(shown.length - 1, 0);
  const shrinkable = options.shrink ?? head.map((_, c) => c).slice(1);
  const shrink = () => {
    // Take one character at a time from the widest shrinkable shown column.
    let over = total() - width;
    while (over > 0) {
      let widest = -1;
      for (const c of shrinkable) {
        if (!shown.includes(c)) continue;
        const floor = Math.max(head[c]!.length, MIN_SHRUNK);
        if (widths[c]! > floor && (widest < 0 || widths[c]! > widths[widest]!)) widest = c;
      }
      if (widest < 0) return;
      widths[widest]!--;
      over--;
    }
  };
  shrink();
  for (const c of options.drop ?? []) {
    if (total() <= width) break;
    shown = shown.filter((s) => s !== c);
    for (const s of shown) widths[s] = natural[s]!;
    shrink();
  }
  if (total() > width) return renderBlocks(head, rows, width, bold);
  const last = shown[shown.length - 1]!;
  const lines: string[] = new Array(rows.length + 1);
  const line = (cells: string[], style?: (s: string) => string): string => {
    let text = '';
    for (const c of shown) {
      let cell = cells[c] ?? '';
      const w = widths[c]!;
      let vis = visibleWidth(cell);
      if (vis > w) {
        cell = truncate(cell, w);
        vis = w;
      }
      if (style) cell = style(cell);
      text += c === last ? cell : cell + ' '.repeat(w - vis) + GAP;
    }
    return text.trimEnd();
  };
  lines[0] = line(head, bold);
  for (let i = 0; i < rows.length; i++) lines[i + 1] = line(rows[i]!);
  return lines;
}

/** One block per row: `HEADER: value` lines, values cut to the width; a blank line between. */
function renderBlocks(head: string[], rows: string[][], width: number, bold: (s: string) => string): string[] {
  const label = Math.max(...head.map((h) => h.length)) + 1;
  const lines: string[] = [];
  rows.forEach((r, i) => {
    if (i > 0) lines.push('');
    head.forEach((h, c) => {
      const value = r[c] ?? '';
      if (value === '') return;
      lines.push(`${bold(`${h}:`)}${' '.repeat(label - h.length - 1)} ${truncate(value, Math.max(width - label - 1, MIN_SHRUNK))}`);
    });
  });
  return lines;
}

/** Wraps plain text at word boundaries to `width` columns; `indent` starts each continuation line. */
export function wrapWords(text: string, width: number, indent = ''): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const room = width - (lines.length > 0 ? indent.length : 0);
    if (current && current.length + 1 + word.length > room) {
      lines.push(lines.length > 0 ? indent + current : current);
      current = word;
    } else current = current ? `${current} ${word}` : word;
  }
  if (current || lines.length === 0) lines.push(lines.length > 0 ? indent + current : current);
  return lines;
}
