/**
 * Drift: whether the files a host's profiles put in place still hold the vault's current
 * pair, with their modes and owners. Read back over the usual access login by a fixed
 * read-only script (paths as arguments, nothing changed on the host); the host's output
 * is untrusted and each file must be named exactly once.
 */
import { createHash } from 'node:crypto';
import { PasstoreError } from '../errors.js';
import type { HostRow } from '../storage/store.js';
import { pairFor, type DeployDeps } from './deploy.js';
import { contentFor, pathFor, profilesOf } from './profiles.js';

// For each path: `link P`, `missing P`, `odd P` (not a plain file), or its sha256sum and stat lines.
const READ_FILES = [
  'for p in "$@"; do',
  '  if [ -L "$p" ]; then echo "link $p"',
  '  elif [ ! -e "$p" ]; then echo "missing $p"',
  '  elif [ ! -f "$p" ]; then echo "odd $p"',
  `  else sha256sum "$p"; stat -c '%n %a %U:%G' "$p"; fi`,
  'done',
].join('\n');

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** One file as the vault says it should be. */
export interface Expected {
  path: string;
  kind: string;
  sha256: string;
  mode: string;
  owner: string;
}

/**
 * Compares the host's answer with what should be there; returns one short text per
 * problem (empty: no drift).
 */
export function compareDeployed(stdout: string, expected: Expected[]): string[] {
  const said = new Map<string, string[]>();
  const add = (path: string, what: string) => said.set(path, [...(said.get(path) ?? []), what]);
  for (const l of stdout.split('\n').map((x) => x.trim()).filter(Boolean)) {
    let m = /^(link|missing|odd) (\S+)$/.exec(l);
    if (m) add(m[2]!, m[1]!);
    else if ((m = /^([0-9a-f]{64})\s+(\S+)$/.exec(l))) add(m[2]!, `sum ${m[1]}`);
    else if ((m = /^(\S+) ([0-7]{3,4}) (\S+:\S+)$/.exec(l))) add(m[1]!, `stat ${m[2]} ${m[3]}`);
  }
  const problems: string[] = [];
  for (const e of expected) {
    const got = said.get(e.path) ?? [];
    if (got.length === 1 && got[0] === 'missing') problems.push(`${e.path} is missing`);
    else if (got.length === 1 && (got[0] === 'link' || got[0] === 'odd')) problems.push(`${e.path} is not a plain file`);
    else {
      const sums = got.filter((g) => g.startsWith('sum '));
      const stats = got.filter((g) => g.startsWith('stat '));
      if (sums.length !== 1 || stats.length !== 1 || got.length !== 2) problems.push(`${e.path}: unreadable answer`);
      else {
        if (sums[0] !== `sum ${e.sha256}`) problems.push(`${e.path} is not the vault's ${e.kind}`);
        const [, mode, owner] = stats[0]!.split(' ');
        if (mode !== e.mode) problems.push(`${e.path} has mode ${mode}, not ${e.mode}`);
        if (owner !== e.owner) problems.push(`${e.path} is owned by ${owner}, not ${e.owner}`);
      }
    }
  }
  return problems;
}

/** What should be on the host for its current pair (the key's bytes are hashed, then wiped). */
export async function expectedFiles(deps: DeployDeps, host: HostRow): Promise<Expected[]> {
  const profiles = profilesOf(host.profiles, deps.config.profiles, deps.config.crtPath);
  const { cert, keyPem } = await pairFor(deps, host, true);
  try {
    return profiles.flatMap((p) =>
      p.files.map((f) => {
        const content = contentFor(f.kind, cert, keyPem, host.fqdn);
        const e = { path: pathFor(f.path, host.fqdn), kind: f.kind, sha256: sha256(content), mode: f.mode.toString(8), owner: `${f.owner}:${f.group}` };
        content.fill(0);
        return e;
      }),
    );
  } finally {
    keyPem.fill(0);
  }
}

/**
 * Reads back a host's deployed files and says how they differ from the vault (empty: none).
 * `signal` gives up while SSH connects (PasstoreError 'cancelled'); nothing is ever changed.
 */
export async function driftOf(deps: DeployDeps, host: HostRow, signal?: AbortSignal): Promise<string[]> {
  const expected = await expectedFiles(deps, host);
  const r = await deps.remote.asRoot(host, (conn) => conn.execRoot(['sh', '-c', READ_FILES, 'sh', ...expected.map((e) => e.path)]), { signal });
  if (r.code !== 0) throw new PasstoreError('io', `${host.fqdn}: reading the deployed files failed: ${r.stderr.trim().split('\n')[0] || `status ${r.code}`}`);
  return compareDeployed(r.stdout, expected);
}
