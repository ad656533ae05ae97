/**
 * Names and syntax (SPEC section 2): hosts, entry specs and patterns are parsed strictly,
 * anything else is refused with a one-line error naming the bad part, and wildcards turn
 * into anchored regular expressions or escaped LIKE patterns only.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PasstoreError } from '../../src/errors.js';
import { globPrefix, globToLike, globToRegExp, parseHost, parseHostPattern, parseSpec, parseSpecPattern } from '../../src/names.js';

const D = 'example.org';

/** Asserts `fn` throws a one-line bad-name PasstoreError matching each of `parts`. */
function refuses(fn: () => unknown, ...parts: Array<string | RegExp>): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PasstoreError, `expected a PasstoreError, got ${String(e)}`);
    assert.equal(e.code, 'bad-name');
    assert.equal(e.exitStatus, 2);
    assert.ok(!e.message.includes('\n'), `one line: ${JSON.stringify(e.message)}`);
    assert.ok(e.message.length < 200, `short: ${e.message}`);
    for (const p of parts) {
      if (typeof p === 'string') assert.ok(e.message.includes(p), `'${e.message}' names '${p}'`);
      else assert.match(e.message, p);
    }
    return true;
  });
}

describe('parseHost', () => {
  test('full names, short names with the domain, uppercase folded', () => {
    assert.equal(parseHost('ui-01.example.org', D), 'ui-01.example.org');
    assert.equal(parseHost('ui-01.example.org', undefined), 'ui-01.example.org');
    assert.equal(parseHost('ui-01', D), 'ui-01.example.org');
    assert.equal(parseHost('UI-01', D), 'ui-01.example.org');
    assert.equal(parseHost('Db-01.Other.NET', D), 'db-01.other.net', 'a full name keeps its own domain');
    assert.equal(parseHost('a', D), 'a.example.org');
    assert.equal(parseHost('0', D), '0.example.org');
  });

  test('a short name without a configured domain is refused', () => {
    refuses(() => parseHost('ui-01', undefined), "'ui-01'", 'no domain is configured');
  });

  test('shell and path characters are refused, naming the bad label', () => {
    refuses(() => parseHost('a;b', D), "bad host name 'a;b'", "label 'a;b'");
    refuses(() => parseHost('$(x)', D), "'$(x)'", "label '$(x)'");
    refuses(() => parseHost('ui-01.exa`id`mple.org', D), "label 'exa`id`mple'");
    refuses(() => parseHost('ui 01', D), "label 'ui 01'");
    refuses(() => parseHost('ui_01', D), "label 'ui_01'");
    refuses(() => parseHost('ui-01/x.example.org', D), "label 'ui-01/x'");
    refuses(() => parseHost('-ui.example.org', D), "label '-ui'");
    refuses(() => parseHost('ui-.example.org', D), "label 'ui-'");
    refuses(() => parseHost('ui-*', D), "label 'ui-*'");
    refuses(() => parseHost('ui\u00e9.example.org', D), 'label');
  });

  test('empty input and empty labels are refused', () => {
    refuses(() => parseHost('', D), 'empty');
    refuses(() => parseHost('../x', D), "'../x'", 'empty label');
    refuses(() => parseHost('ui-01..example.org', D), 'empty label');
    refuses(() => parseHost('.example.org', D), 'empty label');
    refuses(() => parseHost('ui-01.example.org.', D), 'empty label');
  });

  test('over-long names and labels are refused', () => {
    const label63 = 'a'.repeat(63);
    assert.equal(parseHost(`${label63}.example.org`, D), `${label63}.example.org`);
    refuses(() => parseHost(`${'b'.repeat(64)}.example.org`, D), 'longer than 63 characters', `label '${'b'.repeat(57)}...'`);
    refuses(() => parseHost('c'.repeat(300), D), 'longer than 253 characters');
    refuses(() => parseHost('d'.repeat(301), D), 'too long');
    const long = Array.from({ length: 4 }, () => 'e'.repeat(63)).join('.');
    refuses(() => parseHost(long, D), 'longer than 253 characters');
    // The message quotes at most 60 characters of the input.
    assert.throws(() => parseHost('f'.repeat(301), D), (e: Error) => e.message.length < 120);
  });

  test('control characters are shown escaped, never raw', () => {
    refuses(() => parseHost('ui\n01', D), 'ui\\x0a01');
    refuses(() => parseHost('ui\u001b[31m', D), '\\x1b');
  });
});

describe('parseHostPattern', () => {
  test('globs get the domain like short names; * alone is every host', () => {
    assert.deepEqual(parseHostPattern('ui-*', D), { glob: 'ui-*.example.org', wild: true });
    assert.deepEqual(parseHostPattern('wn-0?', D), { glob: 'wn-0?.example.org', wild: true });
    assert.deepEqual(parseHostPattern('*.example.org', D), { glob: '*.example.org', wild: true });
    assert.deepEqual(parseHostPattern('UI-*.Other.Net', D), { glob: 'ui-*.other.net', wild: true });
    assert.deepEqual(parseHostPattern('*', D), { glob: '*', wild: true });
    assert.deepEqual(parseHostPattern('*', undefined), { glob: '*', wild: true });
    assert.deepEqual(parseHostPattern('ui-01', D), { glob: 'ui-01.example.org', wild: false });
    assert.deepEqual(parseHostPattern('*.*', D), { glob: '*.*', wild: true });
  });

  test('bad patterns are refused naming the bad label', () => {
    refuses(() => parseHostPattern('', D), 'empty');
    refuses(() => parseHostPattern('ui-*', undefined), 'no domain is configured');
    refuses(() => parseHostPattern('ui-%', D), "label 'ui-%'");
    refuses(() => parseHostPattern('ui_*', D), "label 'ui_*'");
    refuses(() => parseHostPattern('ui-[0-9]*', D), "label 'ui-[0-9]*'");
    refuses(() => parseHostPattern('*;rm', D), "label '*;rm'");
    refuses(() => parseHostPattern('$(x)*', D), "label '$(x)*'");
    refuses(() => parseHostPattern('../*', D), 'empty label');
    refuses(() => parseHostPattern('ui-*..org', D), 'empty label');
    refuses(() => parseHostPattern('ui.*!', D), "label '*!'");
    refuses(() => parseHostPattern('*'.repeat(301), D), 'too long');
    refuses(() => parseHostPattern(`${'*'.repeat(260)}`, D), 'longer than 253 characters');
    refuses(() => parseHostPattern('a;b', D), "label 'a;b'");
  });
});

describe('parseSpec and parseSpecPattern', () => {
  test('user and service default to root and ssh', () => {
    assert.deepEqual(parseSpec('ui-01', D), { user: 'root', fqdn: 'ui-01.example.org', service: 'ssh' });
    assert.deepEqual(parseSpec('nicedb@db-01:mysql', D), { user: 'nicedb', fqdn: 'db-01.example.org', service: 'mysql' });
    assert.deepEqual(parseSpec('Admin@DB-01.other.net:ipmi', D), { user: 'Admin', fqdn: 'db-01.other.net', service: 'ipmi' });
    assert.deepEqual(parseSpec('db-01:mysql', D), { user: 'root', fqdn: 'db-01.example.org', service: 'mysql' });
    assert.deepEqual(parseSpecPattern('root@ui-*:ssh', D), { user: 'root', host: { glob: 'ui-*.example.org', wild: true }, service: 'ssh' });
    assert.deepEqual(parseSpecPattern('*', D), { user: 'root', host: { glob: '*', wild: true }, service: 'ssh' });
    assert.deepEqual(parseSpecPattern('ui-01', D), { user: 'root', host: { glob: 'ui-01.example.org', wild: false }, service: 'ssh' });
  });

  test('an exact spec refuses a pattern', () => {
    refuses(() => parseSpec('ui-*', D), "bad entry 'ui-*'", 'not a pattern');
    refuses(() => parseSpec('root@wn-0?:ssh', D), 'not a pattern');
  });

  test('bad users, services and hosts are refused naming the part', () => {
    refuses(() => parseSpec('', D), 'empty');
    refuses(() => parseSpec('a;b@ui-01', D), "user 'a;b'");
    refuses(() => parseSpec('$(x)@ui-01', D), "user '$(x)'");
    refuses(() => parseSpec('@ui-01', D), "user ''");
    refuses(() => parseSpec(`${'u'.repeat(33)}@ui-01`, D), 'user');
    refuses(() => parseSpec('ui-01:$(x)', D), "service '$(x)'");
    refuses(() => parseSpec('ui-01:a;b', D), "service 'a;b'");
    refuses(() => parseSpec('ui-01:', D), "service ''");
    refuses(() => parseSpec('ui-01:SSH', D), "service 'SSH'");
    refuses(() => parseSpec('root@', D), 'no host');
    refuses(() => parseSpec(':ssh', D), 'no host');
    refuses(() => parseSpec('root@a;b:ssh', D), "label 'a;b'");
    refuses(() => parseSpec('root@../x', D), 'empty label');
    refuses(() => parseSpec('root@ui-01@x', D), "label 'ui-01@x'");
    refuses(() => parseSpec('x'.repeat(301), D), 'too long');
    refuses(() => parseSpecPattern('a;b@ui-*', D), "user 'a;b'");
    refuses(() => parseSpecPattern('ui-%:ssh', D), "label 'ui-%'");
    refuses(() => parseSpecPattern('', D), 'empty');
  });
});

describe('wildcards', () => {
  test('globToRegExp is anchored and treats everything but * and ? literally', () => {
    const re = globToRegExp('ui-*.example.org');
    assert.ok(re.test('ui-01.example.org'));
    assert.ok(re.test('ui-.example.org'));
    assert.ok(!re.test('xui-01.example.org'), 'anchored at the start');
    assert.ok(!re.test('ui-01.example.org.evil.net'), 'anchored at the end');
    assert.ok(!re.test('ui-01Xexample.org'), '. is literal');
    const q = globToRegExp('wn-0?.example.org');
    assert.ok(q.test('wn-01.example.org'));
    assert.ok(!q.test('wn-10.example.org'));
    assert.ok(!q.test('wn-0.example.org'), '? is exactly one character');
    assert.ok(!q.test('wn-012.example.org'));
    assert.ok(globToRegExp('*').test('anything.at.all'));
    for (const literal of ['a+b', 'a|b', '(x)', 'a[b]', 'a^b$', 'a\\d', 'a{2}']) {
      const r = globToRegExp(literal);
      assert.ok(r.test(literal), `${literal} matches itself`);
    }
    assert.ok(!globToRegExp('a+b').test('aab'));
    assert.ok(!globToRegExp('a|b').test('a'));
    assert.ok(!globToRegExp('a\\d').test('a1'));
  });

  test('globToLike escapes % _ and ! so only * and ? become wildcards', () => {
    assert.equal(globToLike('ui-*.example.org'), 'ui-%.example.org');
    assert.equal(globToLike('wn-0?.example.org'), 'wn-0_.example.org');
    assert.equal(globToLike('*'), '%');
    assert.equal(globToLike('a%b'), 'a!%b');
    assert.equal(globToLike('a_b'), 'a!_b');
    assert.equal(globToLike('a!b'), 'a!!b');
    assert.equal(globToLike('!%_*?'), '!!!%!_%_');
    assert.equal(globToLike("it's"), "it's", 'quotes are left to the placeholder');
  });

  test('globPrefix is the literal part before the first wildcard', () => {
    assert.equal(globPrefix('ui-*.example.org'), 'ui-');
    assert.equal(globPrefix('wn-0?.example.org'), 'wn-0');
    assert.equal(globPrefix('*.example.org'), '');
    assert.equal(globPrefix('db-01.example.org'), 'db-01.example.org');
  });
});
