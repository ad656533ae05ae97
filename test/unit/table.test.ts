/**
 * The shell's table writer: aligned columns, tables fitted to the terminal's width by
 * shortening and dropping the columns a command allows, one block per row past that,
 * colours kept through shortening, help text wrapped at word boundaries; and 10,000
 * rows drawn well inside the 0.3 s budget.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { PassThrough } from 'node:stream';
import { renderTable, truncate, visibleWidth, wrapWords } from '../../src/shell/table.js';
import { Terminal } from '../../src/shell/terminal.js';

const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

describe('renderTable', () => {
  test('aligns columns two spaces apart, no trailing blanks', () => {
    assert.deepEqual(renderTable(['HOST', 'X'], [['a', 'long value'], ['longer-host', 'v']], 80), [
      'HOST         X',
      'a            long value',
      'longer-host  v',
    ]);
  });

  test('shortens the allowed columns, widest first, with an ellipsis', () => {
    const rows = [['host-1', 'CN=host-1.example.org,OU=Computers,O=Example Research,C=XX', '2027-01-01']];
    const lines = renderTable(['HOST', 'SUBJECT', 'NOT AFTER'], rows, 40, { shrink: [1] });
    for (const l of lines) assert.ok(l.length <= 40, l);
    assert.equal(lines[1], 'host-1  CN=host-1.example.o…  2027-01-01');
  });

  test('drops columns in the order given when shortening is not enough', () => {
    const rows = [['host-1', 'CN=host-1.example.org,OU=Computers', '0123456789ABCDEF', '2027-01-01', 'request pending 2026-12-01']];
    const lines = renderTable(['HOST', 'SUBJECT', 'SERIAL', 'NOT AFTER', 'RENEWAL'], rows, 60, { shrink: [1, 2], drop: [1, 2] });
    assert.deepEqual(lines, ['HOST    SERIAL        NOT AFTER   RENEWAL', 'host-1  0123456789A…  2027-01-01  request pending 2026-12-01']);
    const narrower = renderTable(['HOST', 'SUBJECT', 'SERIAL', 'NOT AFTER', 'RENEWAL'], rows, 46, { shrink: [1, 2], drop: [1, 2] });
    assert.equal(narrower[0], 'HOST    NOT AFTER   RENEWAL');
    for (const l of lines) assert.ok(l.length <= 60, l);
    for (const l of narrower) assert.ok(l.length <= 46, l);
  });

  test('one block per row when nothing more can give', () => {
    const lines = renderTable(['HOST', 'RENEWAL'], [['a-rather-long-host-name', 'request pending 2026-12-01'], ['b', 'x']], 32, { shrink: [] });
    assert.deepEqual(lines, ['HOST:    a-rather-long-host-name', 'RENEWAL: request pending 2026-1…', '', 'HOST:    b', 'RENEWAL: x']);
  });

  test('colours do not count in widths and survive shortening', () => {
    const red = (s: string) => `\x1b[31m${s}\x1b[39m`;
    assert.equal(visibleWidth(red('abc')), 3);
    const cut = truncate(red('abcdefghij'), 5);
    assert.equal(strip(cut), 'abcd…');
    assert.ok(cut.startsWith('\x1b[31m') && cut.endsWith('\x1b[0m'));
    const lines = renderTable(['A', 'B'], [[red('x'), 'y'], ['xx', 'z']], 80);
    assert.equal(strip(lines[1]!), 'x   y');
  });

  test('prose in the last column wraps between words instead of being cut', () => {
    const rows = [['backup', '', 'Write verified, encrypted copies of the whole vault to offline media'], ['lock', 'l', 'Wipe the key']];
    const lines = renderTable(['COMMAND', 'ALIAS', 'WHAT IT DOES'], rows, 50, { wrapLast: true });
    assert.deepEqual(lines, [
      'COMMAND  ALIAS  WHAT IT DOES',
      'backup          Write verified, encrypted copies',
      '                of the whole vault to offline',
      '                media',
      'lock     l      Wipe the key',
    ]);
  });

  test('10,000 rows in well under 0.3 s', () => {
    const rows = Array.from({ length: 10_000 }, (_, i) => [`wn-${i}`, `10.0.${i >> 8}.${i & 255}:22`, 'root:ssh root:ipmi admin:web']);
    const t0 = performance.now();
    const lines = renderTable(['HOST', 'ADDRESS', 'ENTRIES'], rows, 80, { shrink: [2], drop: [1] });
    const ms = performance.now() - t0;
    assert.equal(lines.length, 10_001);
    assert.ok(ms < 150, `took ${ms.toFixed(1)} ms`);
  });
});

describe('wrapWords', () => {
  test('breaks between words, never inside one', () => {
    const text = 'Lists hosts matching PATTERN (all hosts without one) with their entries as user:service; an entry whose password was never set is marked (unset).';
    const lines = wrapWords(text, 40, '  ');
    for (const l of lines) assert.ok(l.length <= 40, l);
    assert.equal(lines.join(' ').replace(/\s+/g, ' '), text);
    assert.ok(lines.slice(1).every((l) => l.startsWith('  ')));
  });
});

describe('Terminal', () => {
  function terminal(columns: number): { term: Terminal; text: () => string } {
    let text = '';
    const out = new Writable({ write(chunk, _enc, done) { text += chunk.toString(); done(); } }) as unknown as NodeJS.WriteStream;
    Object.assign(out, { columns });
    const input = new PassThrough() as unknown as NodeJS.ReadStream;
    return { term: new Terminal(input, out, 10), text: () => text };
  }

  test('a table fits the terminal; a long line wraps at word boundaries', () => {
    const { term, text } = terminal(60);
    term.table(['HOST', 'SUBJECT', 'NOT AFTER'], [['h', 'CN=h.example.org,OU=Computers,O=Example Research Institute,C=XX', '2027-01-01']], { shrink: [1] });
    term.text('lcrt: One line per host with a current certificate or an open request: subject, serial, not-after');
    const error = `error: ${'x'.repeat(70)} is wrong`;
    term.line(error);
    const lines = text().split('\n');
    for (const l of lines.slice(0, 2)) assert.ok(l.length <= 60, l);
    for (const l of lines.slice(2, 4)) assert.ok(l.length < 60, l);
    assert.equal(lines[2], 'lcrt: One line per host with a current certificate or an');
    assert.equal(lines[3], '  open request: subject, serial, not-after');
    assert.equal(lines[4], error, 'a line (an error) is never cut in two');
  });
});
