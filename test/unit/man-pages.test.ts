/**
 * The man pages against the code: passtore(1) documents every command of the registry
 * (and no other), with each usage line, alias and flag exactly as the descriptors have
 * them; passtore.conf(5) documents only keys src/config.ts accepts, every key it has,
 * the defaults of defaultConfig(), and examples that load; both pages render with no
 * warning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Action } from '../../src/command.js';
import { defaultConfig, loadConfig, type Config } from '../../src/config.js';
import { registry } from '../../src/registry.js';
import { CRON_COMMANDS, cronCommandUsage, CRON_JOBS } from '../../src/cron/jobs.js';

const run = promisify(execFile);

// The compiled test runs from dist/test/unit/.
const ROOT = new URL('../../../', import.meta.url);
const PAGE_1 = fileURLToPath(new URL('man/passtore.1', ROOT));
const PAGE_5 = fileURLToPath(new URL('man/passtore.conf.5', ROOT));
const VERSION = (JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { version: string }).version;

/** Removes font escapes and turns the other escapes used in the pages into text. */
function unescape(text: string): string {
  return text
    .replace(/\\f(?:[BIRP]|\(..|\[[^\]]*\])/g, '')
    .replace(/\\-/g, '-')
    .replace(/\\[&%]/g, '')
    .replace(/\\~/g, ' ')
    .replace(/\\\(em/g, '\u2014')
    .replace(/\\\(lq|\\\(rq/g, '"')
    .replace(/\\e/g, '\\');
}

const ALTERNATING = new Set(['BR', 'RB', 'IR', 'RI', 'BI', 'IB']);

/** The words of a macro line's arguments (double quotes group). */
function macroArgs(rest: string): string[] {
  return [...rest.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/**
 * One roff source line as the text it renders to: font macros become their words
 * (alternating ones joined without a space), structural macros become an empty line,
 * comments disappear. Undefined for comment lines.
 */
function renderLine(line: string): string | undefined {
  if (line.startsWith('.\\"')) return undefined;
  const m = /^\.([A-Za-z]+)\s*(.*)$/.exec(line);
  if (!m) return unescape(line);
  const [, macro, rest] = m as unknown as [string, string, string];
  if (macro === 'B' || macro === 'I' || macro === 'SY') return unescape(macroArgs(rest).join(' '));
  if (macro === 'OP') return unescape(`[${macroArgs(rest).join(' ')}]`);
  if (ALTERNATING.has(macro)) return unescape(macroArgs(rest).join(''));
  return '';
}

interface Block {
  /** The heading's text (`.SH` or `.SS`). */
  title: string;
  /** The raw roff lines under it. */
  lines: string[];
}

/** Splits a page into its `.SH` sections, each with its `.SS` subsections. */
function sections(page: string): Map<string, { lines: string[]; subsections: Block[] }> {
  const out = new Map<string, { lines: string[]; subsections: Block[] }>();
  let current: { lines: string[]; subsections: Block[] } | undefined;
  for (const line of page.split('\n')) {
    const sh = /^\.SH\s+(.*)$/.exec(line);
    if (sh) {
      current = { lines: [], subsections: [] };
      out.set(unescape(macroArgs(sh[1]!).join(' ')), current);
      continue;
    }
    if (!current) continue;
    const ss = /^\.SS\s+(.*)$/.exec(line);
    if (ss) {
      current.subsections.push({ title: unescape(macroArgs(ss[1]!).join(' ')), lines: [] });
      continue;
    }
    current.lines.push(line);
    current.subsections.at(-1)?.lines.push(line);
  }
  return out;
}

/** The rendered lines of a block, and all of it as one space-separated text. */
function text(lines: string[]): { lines: string[]; flat: string } {
  const rendered = lines.map(renderLine).filter((l): l is string => l !== undefined);
  return { lines: rendered, flat: rendered.join(' ').replace(/\s+/g, ' ') };
}

/** The `.TP`/`.TQ` tags of a block (the line after each), raw. */
function tags(lines: string[]): string[] {
  const out: string[] = [];
  lines.forEach((l, i) => {
    if ((l === '.TP' || l === '.TQ') && lines[i + 1] !== undefined) out.push(lines[i + 1]!);
  });
  return out;
}

/** The key a tag such as `\fBidle_lock\fR = \fIMINUTES\fR` documents. */
function keyOfTag(tag: string): string | undefined {
  if (!tag.startsWith('\\fB')) return undefined;
  return /^([A-Za-z_]+)\b/.exec(unescape(tag))?.[1];
}

function actionsOf(name: string): Array<{ label: string; action: Action }> {
  const c = registry.find(name)!;
  if (c.subcommands) return Object.entries(c.subcommands).map(([sub, action]) => ({ label: `${name} ${sub}`, action }));
  return [{ label: name, action: c as Action }];
}

const page1 = readFileSync(PAGE_1, 'utf8');
const page5 = readFileSync(PAGE_5, 'utf8');

test('passtore(1) has a subsection for every command, and none for a command that does not exist', () => {
  const commands = sections(page1).get('COMMANDS');
  assert.ok(commands, 'passtore.1 has no COMMANDS section');
  const documented = commands.subsections.map((s) => s.title).sort();
  const names = registry.commands.map((c) => c.name).sort();
  assert.deepEqual(documented, names);
});

test('passtore(1) gives every usage line, alias and flag exactly as the descriptors do', () => {
  const commands = sections(page1).get('COMMANDS')!;
  for (const c of registry.commands) {
    const block = commands.subsections.find((s) => s.title === c.name)!;
    const { lines, flat } = text(block.lines);
    for (const { label, action } of actionsOf(c.name)) {
      assert.ok(lines.includes(action.usage), `${label}: usage line '${action.usage}' is not in passtore.1`);
      for (const flag of Object.keys(action.flags ?? {})) {
        assert.ok(flat.includes(`--${flag}`), `${label}: flag --${flag} is not described in passtore.1`);
      }
    }
    for (const alias of c.aliases ?? []) {
      assert.match(flat, new RegExp(`\\bAlias ${alias}\\b`), `${c.name}: alias ${alias} is not in passtore.1`);
    }
  }
});

test('passtore(1) names the version of the package and its SYNOPSIS the options the program takes', () => {
  assert.match(page1, new RegExp(`^\\.TH PASSTORE 1 \\S+ "passtore ${VERSION.replace(/\./g, '\\.')}"`, 'm'));
  assert.match(page5, new RegExp(`^\\.TH PASSTORE\\.CONF 5 \\S+ "passtore ${VERSION.replace(/\./g, '\\.')}"`, 'm'));
  const synopsis = text(sections(page1).get('SYNOPSIS')!.lines).flat;
  for (const word of ['--config', '--operator', 'init', 'restore', '--help', '--version']) assert.ok(synopsis.includes(word), `SYNOPSIS lacks ${word}`);
  // Every word of the usage text src/bin/passtore.ts prints (not exported: read from the source).
  const source = readFileSync(new URL('src/bin/passtore.ts', ROOT), 'utf8');
  const usage = /const USAGE = `([^`]*)`/.exec(source)?.[1];
  assert.ok(usage, 'src/bin/passtore.ts has no USAGE text');
  const lines = usage.split('\n').filter((l) => /^(usage:)?\s+passtore\b/.test(l));
  assert.ok(lines.length >= 3, `unexpected USAGE: ${usage}`);
  for (const line of lines) {
    for (const word of line.replace(/^usage:/, '').split(/[\s[\]|]+/).filter((w) => w && w !== 'passtore')) {
      assert.ok(new RegExp(`(^|[\\s[])${word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[\\s\\]])`).test(synopsis), `SYNOPSIS lacks '${word}' of the usage line '${line.trim()}'`);
    }
  }
});

/** The documented keys: top-level (KEYS and SANCTORUM.CONF KEYS) and per section. */
function documentedKeys(): { topLevel: Map<string, string>; sections: Map<string, string[]> } {
  const all = sections(page5);
  const topLevel = new Map<string, string>();
  for (const name of ['KEYS', 'SANCTORUM.CONF KEYS']) {
    const block = all.get(name);
    assert.ok(block, `passtore.conf.5 has no ${name} section`);
    // Each key with the text of its paragraph (up to the next tag or heading).
    const lines = block.lines;
    lines.forEach((l, i) => {
      if ((l !== '.TP' && l !== '.TQ') || !lines[i + 1]) return;
      const key = keyOfTag(lines[i + 1]!);
      if (!key) return;
      const end = lines.findIndex((x, j) => j > i + 1 && (x === '.TP' || x === '.PP' || x.startsWith('.SH')));
      topLevel.set(key, text(lines.slice(i + 1, end < 0 ? undefined : end)).flat);
    });
  }
  const bySection = new Map<string, string[]>();
  const sectionBlock = all.get('SECTIONS');
  assert.ok(sectionBlock, 'passtore.conf.5 has no SECTIONS section');
  for (const s of sectionBlock.subsections) {
    const name = /^\[([a-z]+)\]$/.exec(s.title)?.[1];
    assert.ok(name, `SECTIONS: subsection '${s.title}' is not a [section]`);
    bySection.set(name, tags(s.lines).map(keyOfTag).filter((k): k is string => k !== undefined));
  }
  return { topLevel, sections: bySection };
}

/** Loads a config file holding `body`; returns the config or the error message. */
function tryConfig(body: string): Config | string {
  const dir = mkdtempSync(join(tmpdir(), 'passtore-man-'));
  try {
    const file = join(dir, 'passtore.conf');
    writeFileSync(file, body);
    return loadConfig(file);
  } catch (e) {
    return (e as Error).message;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('passtore.conf(5) documents only keys src/config.ts accepts', () => {
  const { topLevel, sections: bySection } = documentedKeys();
  assert.ok(topLevel.size > 0);
  // The check below tells an unknown key apart: make sure it still does.
  assert.match(String(tryConfig('no_such_key = 1\n')), /no_such_key: unknown key/);
  assert.match(String(tryConfig('[smtp]\nno_such_key = 1\n')), /unknown key/);
  for (const key of topLevel.keys()) {
    const result = tryConfig(`${key} = 1\n`);
    assert.ok(typeof result !== 'string' || !/unknown key/.test(result), `documented key ${key}: ${String(result)}`);
  }
  for (const [section, keys] of bySection) {
    assert.equal(typeof tryConfig(`[${section}]\n`), 'object', `documented section [${section}] is refused`);
    for (const key of keys) {
      // Each value has a declared type (test/unit/config-keys.test.ts): here only the name counts.
      const result = tryConfig(`[${section}]\n${key} = x\n`);
      assert.ok(typeof result !== 'string' || !/unknown key/.test(result), `documented key [${section}] ${key}: ${String(result)}`);
    }
  }
});

test('passtore.conf(5) documents every key of the configuration, with the defaults of defaultConfig()', () => {
  const { topLevel, sections: bySection } = documentedKeys();
  const defaults = defaultConfig();
  const snake = (camel: string) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  for (const [field, value] of Object.entries(defaults)) {
    if (field === 'file') continue;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      assert.ok(bySection.has(field), `section [${field}] is not documented`);
      continue;
    }
    const key = snake(field);
    const paragraph = topLevel.get(key);
    assert.ok(paragraph, `key ${key} is not documented`);
    if (key === 'db') {
      assert.match(String(value), /^sqlite:.*\/passtore\/vault\.db$/);
      assert.ok(paragraph.includes('Default: sqlite:$XDG_DATA_HOME/passtore/vault.db'), `db: default not documented as the code has it: ${paragraph}`);
      continue;
    }
    if (key === 'operator') {
      // Depends on who runs it; the text names where it comes from.
      assert.ok(paragraph.includes('Default: $SUDO_USER'), `operator: default not documented: ${paragraph}`);
      continue;
    }
    const shown = value === undefined || (Array.isArray(value) && value.length === 0) ? 'none' : Array.isArray(value) ? value.join(',') : String(value);
    const escaped = shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(paragraph, new RegExp(`Default: ${escaped}(?![\\w/-])`), `${key}: expected 'Default: ${shown}' in: ${paragraph}`);
  }
});

test('the examples of passtore.conf(5) load, and the sanctorum.conf one maps to MySQL', () => {
  const all = sections(page5);
  const examples: string[] = [];
  for (const name of ['EXAMPLE', 'SANCTORUM.CONF KEYS']) {
    let inside: string[] | undefined;
    for (const line of all.get(name)!.lines) {
      if (line === '.EX') inside = [];
      else if (line === '.EE' && inside) {
        examples.push(`${inside.map(unescape).join('\n')}\n`);
        inside = undefined;
      } else inside?.push(line);
    }
  }
  assert.equal(examples.length, 2);
  for (const body of examples) {
    const dir = mkdtempSync(join(tmpdir(), 'passtore-man-'));
    try {
      const file = join(dir, 'passtore.conf');
      writeFileSync(file, body);
      const config = loadConfig(file);
      assert.equal(config.domain, 'example.org');
      if (body.includes('dbuser')) {
        assert.equal(config.db, 'mysql://sanctorum@localhost/sanctorum');
        assert.equal(config.dbPasswordFile, join(dir, '.sanctorum'));
      } else {
        assert.equal(config.db, 'sqlite:/var/lib/passtore/vault.db');
        assert.equal(config.network.allow, '/usr/local/sbin/vault-net allow {address} {port}');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('a bad value is reported as FILE:LINE: key: why, as passtore.conf(5) says', () => {
  assert.ok(text(sections(page5).get('DESCRIPTION')!.lines).lines.includes('FILE:LINE: key: why'));
  const dir = mkdtempSync(join(tmpdir(), 'passtore-man-'));
  try {
    const file = join(dir, 'passtore.conf');
    writeFileSync(file, 'domain = example.org\nidle_lock = soon\n');
    assert.throws(() => loadConfig(file), (e: Error) => e.message.startsWith(`${file}:2: idle_lock: `));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The path of an executable on PATH, or undefined. */
function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, command))) return join(dir, command);
  }
  return undefined;
}

const groff = which('groff');
const man = which('man');
const renderer = groff ? 'groff' : man ? 'man' : undefined;
const noRenderer = renderer ? false : 'neither groff nor man is installed';
if (noRenderer && process.env.CI === 'true') throw new Error(`CI requires groff or man to check the man pages: ${noRenderer}`);

for (const page of [PAGE_1, PAGE_5]) {
  test(`${page.split('/').pop()} renders without warnings`, { skip: noRenderer }, async () => {
    const args = renderer === 'groff' ? ['-man', '-Tutf8', '-ww', '-z', page] : ['-l', '--warnings', page];
    const { stderr } = await run(renderer === 'groff' ? groff! : man!, args, { env: { ...process.env, LANG: 'C.UTF-8', MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80' } });
    assert.equal(stderr, '', `${renderer} warned about ${page}`);
  });
}

/*
 * passtore-cron(8) against src/cron/main.ts and src/cron/jobs.ts: a COMMANDS subsection for
 * every command main.ts accepts (`send` included) and no other, each usage line of
 * CRON_USAGE as the tag of its subsection, every option parseArgs takes, the exit
 * statuses, the [schedule] keys src/config.ts accepts, the labels of check's
 * performance data; its examples and the [smtp], [ca] and [schedule] examples of
 * passtore.conf(5) load; package.json installs the page; it renders without warnings.
 */
const PAGE_8 = fileURLToPath(new URL('man/passtore-cron.8', ROOT));
const page8 = readFileSync(PAGE_8, 'utf8');
const cronMainSource = readFileSync(new URL('src/cron/main.ts', ROOT), 'utf8');
const cronJobsSource = readFileSync(new URL('src/cron/jobs.ts', ROOT), 'utf8');

/** The commands passtore-cron accepts, in its usage's order: the descriptors main.ts reads. */
function cronCommands(): string[] {
  const names = CRON_COMMANDS.map((c) => c.name);
  assert.ok(names.length >= 7, `unexpected CRON_COMMANDS: ${names.join(' ')}`);
  return names;
}

/** The `.EX` blocks of some lines, unescaped. */
function examplesIn(lines: string[]): string[] {
  const out: string[] = [];
  let inside: string[] | undefined;
  for (const line of lines) {
    if (line === '.EX') inside = [];
    else if (line === '.EE' && inside) {
      out.push(`${inside.map(unescape).join('\n')}\n`);
      inside = undefined;
    } else inside?.push(line);
  }
  return out;
}

test('passtore-cron(8) has a subsection for every command of CRON_COMMANDS, in its order, and none other', () => {
  const commands = sections(page8).get('COMMANDS');
  assert.ok(commands, 'passtore-cron.8 has no COMMANDS section');
  assert.deepEqual(commands.subsections.map((s) => s.title), cronCommands());
  // Every job main.ts and the daemon run is a command of the usage.
  for (const job of CRON_JOBS) assert.ok(cronCommands().includes(job.name), `job ${job.name} is not in CRON_COMMANDS`);
  const synopsis = text(sections(page8).get('SYNOPSIS')!.lines).flat;
  for (const c of cronCommands()) assert.match(synopsis, new RegExp(`\\b${c}\\b`), `SYNOPSIS lacks ${c}`);
});

test('passtore-cron(8) gives each usage line of CRON_USAGE, every option and the version', async () => {
  const { CRON_USAGE } = await import('../../src/cron/main.js');
  const commands = sections(page8).get('COMMANDS')!;
  const usages = CRON_USAGE.split('\n')
    .filter((l) => l.startsWith('  '))
    .map((l) => l.trim().split(/\s{2,}/)[0]!);
  assert.deepEqual(usages, CRON_COMMANDS.map(cronCommandUsage), `CRON_USAGE is not built from CRON_COMMANDS: ${CRON_USAGE}`);
  for (const c of CRON_COMMANDS) assert.ok(CRON_USAGE.includes(`  ${c.summary}`), `${c.name}: its summary is not in CRON_USAGE`);
  for (const usage of usages) {
    const name = usage.split(' ')[0]!;
    const block = commands.subsections.find((s) => s.title === name);
    assert.ok(block, `${name}: no subsection`);
    assert.ok(tags(block.lines).map((t) => renderLine(t)).includes(usage), `${name}: usage line '${usage}' is not the tag of its subsection`);
  }
  const options = sections(page8).get('OPTIONS');
  assert.ok(options, 'passtore-cron.8 has no OPTIONS section');
  const optionTags = tags(options.lines).map((t) => renderLine(t) ?? '').join('\n');
  const parsed = (/options: \{(.*?)\}, allowPositionals/.exec(cronMainSource) ?? /const options = \{(.*?)\} as const;/.exec(cronMainSource))?.[1];
  assert.ok(parsed, 'src/cron/main.ts: parseArgs options not found');
  const found = [...parsed.matchAll(/'?([a-z][a-z-]*)'?: \{ type: '(?:string|boolean)'(?:, short: '([A-Za-z])')? \}/g)];
  assert.ok(found.length >= 4);
  for (const [, long, short] of found) {
    assert.ok(optionTags.includes(`--${long}`), `option --${long} is not in OPTIONS`);
    if (short) assert.ok(optionTags.includes(`-${short},`), `option -${short} is not in OPTIONS`);
  }
  assert.match(page8, new RegExp(`^\\.TH PASSTORE\\\\-CRON 8 \\S+ "passtore ${VERSION.replace(/\./g, '\\.')}"`, 'm'));
});

test('passtore-cron(8) documents every exit status, and check the Nagios ones', async () => {
  const { ExitStatus } = await import('../../src/errors.js');
  const block = sections(page8).get('EXIT STATUS');
  assert.ok(block, 'passtore-cron.8 has no EXIT STATUS section');
  const statuses = tags(block.lines).map((t) => renderLine(t));
  for (const status of Object.values(ExitStatus)) {
    assert.equal(statuses.filter((s) => s === String(status)).length, 2, `status ${status} is not documented for both the jobs and check`);
  }
  const flat = text(block.lines).flat;
  for (const word of ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN']) assert.ok(flat.includes(word), `EXIT STATUS lacks ${word}`);
});

test('passtore-cron(8) names the [schedule] keys src/config.ts accepts, and check the status words and performance data jobs.ts prints', () => {
  const commands = sections(page8).get('COMMANDS')!;
  const daemon = text(commands.subsections.find((s) => s.title === 'daemon')!.lines).flat;
  const listed = /Each key of \[schedule\] \(([^)]*)\)/.exec(daemon)?.[1]?.split(/,\s*/);
  assert.ok(listed, `daemon: the [schedule] keys are not listed: ${daemon}`);
  const accepted = cronCommands().filter((c) => typeof tryConfig(`[schedule]\n${c} = 17 3 * * *\n`) === 'object');
  assert.deepEqual([...listed].sort(), accepted.sort());
  const check = text(commands.subsections.find((s) => s.title === 'check')!.lines).flat;
  const perf = /const perf = `([^`]*)`/.exec(cronJobsSource)?.[1];
  assert.ok(perf, 'src/cron/jobs.ts: the performance data line was not found');
  const labels = [...perf.matchAll(/(\w+)=\$\{[^}]*\}([;0-9]*)/g)];
  assert.ok(labels.length >= 4);
  for (const [, label, thresholds] of labels) assert.ok(check.includes(`${label}=N${thresholds}`), `check: performance data ${label}=…${thresholds} is not documented`);
  for (const word of ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN']) {
    assert.ok(`${cronJobsSource}${cronMainSource}`.includes(`PASSTORE ${word} - `), `the code no longer prints PASSTORE ${word}`);
    assert.ok(check.includes(`PASSTORE ${word} - `), `check: PASSTORE ${word} is not documented`);
  }
});

test('the configuration examples of passtore-cron(8) and the [smtp], [ca], [schedule] ones of passtore.conf(5) load', () => {
  const cronExamples = examplesIn(sections(page8).get('EXAMPLES')!.lines).filter((e) => /^(\[\w+\]|\w+ = )/m.test(e) && !e.includes('Description='));
  assert.ok(cronExamples.length >= 2, 'passtore-cron.8 has no configuration example');
  for (const body of cronExamples) {
    const config = tryConfig(body);
    assert.equal(typeof config, 'object', `passtore-cron.8 example does not load: ${String(config)}\n${body}`);
  }
  const main = tryConfig(cronExamples.find((e) => e.includes('keyfile ='))!) as Config;
  assert.ok(main.keyfile && main.adminEmail.length > 0 && main.smtp.host && main.ca.dir && main.ca.imap_url);
  const bySection = sections(page5).get('SECTIONS')!.subsections;
  for (const name of ['smtp', 'ca', 'schedule']) {
    const examples = examplesIn(bySection.find((s) => s.title === `[${name}]`)!.lines);
    assert.ok(examples.length > 0, `passtore.conf.5 [${name}] has no example`);
    for (const body of examples) {
      const config = tryConfig(body);
      assert.equal(typeof config, 'object', `passtore.conf.5 [${name}] example does not load: ${String(config)}`);
      assert.ok(Object.keys((config as Config)[name as 'smtp' | 'ca' | 'schedule']).length > 0);
    }
  }
});

test('package.json installs passtore-cron(8), and every page it lists exists', () => {
  const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { man: string[] };
  assert.ok(pkg.man.includes('man/passtore-cron.8'));
  for (const page of pkg.man) assert.ok(existsSync(fileURLToPath(new URL(page, ROOT))), `${page} is listed in package.json but missing`);
});

test('passtore-cron.8 renders without warnings', { skip: noRenderer }, async () => {
  const args = renderer === 'groff' ? ['-man', '-Tutf8', '-ww', '-z', PAGE_8] : ['-l', '--warnings', PAGE_8];
  const { stderr } = await run(renderer === 'groff' ? groff! : man!, args, { env: { ...process.env, LANG: 'C.UTF-8', MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80' } });
  assert.equal(stderr, '', `${renderer} warned about ${PAGE_8}`);
});
