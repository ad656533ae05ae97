import { Cancel, cancelledBy } from '../src/cancel.js';
import { defineCommand, type Context, type Input } from '../src/command.js';
import { isRemoteFile, parseRemoteFile } from '../src/names.js';
import { fetchRemoteFile } from '../src/remote/files.js';
import { PasstoreError } from '../src/errors.js';
import { resolveHost } from '../src/targets.js';
import { storeKey } from '../src/x509/cert-store.js';
import { readInputFile } from '../src/x509/input-file.js';
import { Passphrases } from '../src/x509/passphrases.js';
import { readObjects, type Found } from '../src/x509/pem.js';

export default defineCommand({
  name: 'getkey',
  summary: 'Import an existing private key for a host',
  description:
    'Imports the one private key held in FILE (PEM, DER, or a PKCS#12 file; an encrypted key or PKCS#12 file asks for its passphrase) for HOST, its private half proven (EC: d·G is its public point; RSA: its components agree, as openssl rsa -check checks) before it is stored encrypted and waiting for its certificate. Keys weaker than RSA 2048 or EC P-256 are refused. Use it only for a key made elsewhere; crtreq makes new ones. user@host:PATH fetches it over SFTP through the network guard (as root with the stored password on a vault host with a pinned key; otherwise that user\'s password is asked).',
  usage: 'getkey HOST FILE|user@host:PATH',
  args: [
    { name: 'host', kind: 'host' },
    { name: 'file', kind: 'path' },
  ],
  needs: ['unlocked'],
  asksSecret: (input) => isRemoteFile(input.word('file')),
  audited: true,
  async run(ctx, input) {
    try {
      await getkey(ctx, input);
    } catch (e) {
      // Ctrl-C is checked only before the one transaction that stores.
      if (cancelledBy(e, input.signal)) throw new PasstoreError('cancelled', 'cancelled; nothing stored');
      throw e;
    }
  },
});

async function getkey(ctx: Context, input: Input): Promise<void> {
  const host = await resolveHost(ctx.store, input.host('host'));
  const file = input.word('file');
  const data = isRemoteFile(file) ? await fetchRemoteFile(ctx, parseRemoteFile(file, ctx.config.domain, { pathRequired: true }), input.signal) : await readInputFile(file, input.signal);
  const { objects, problems } = readObjects(data);
  data.fill(0);
  const keyLike = objects.filter((o) => o.kind !== 'certificate');
  if (keyLike.length !== 1) {
    throw new PasstoreError('mismatch', `${file}: expected one private key, found ${keyLike.length}${problems.length ? ` (${problems[0]})` : ''}`);
  }
  let found: Found = keyLike[0]!;
  if (found.kind === 'locked') {
    if (ctx.scripted) throw new PasstoreError('policy', 'getkey of an encrypted key or PKCS#12 file asks for its passphrase and cannot run from a script');
    const passphrases = new Passphrases(ctx.prompt);
    const opened = await passphrases.open(file, found.locked);
    passphrases.close();
    if (!opened.ok) throw new PasstoreError('bad-passphrase', `${file}: ${opened.reason}`);
    const keys = opened.contents.objects.filter((o) => o.kind === 'key');
    if (keys.length !== 1) throw new PasstoreError('mismatch', `${file}: expected one private key, found ${keys.length}${opened.contents.problems.length ? ` (${opened.contents.problems[0]})` : ''}`);
    found = keys[0]!;
  }
  if (found.kind !== 'key') throw new PasstoreError('mismatch', `${file}: no private key in it`);
  const key = { key: found.key, facts: found.facts };
  if (await ctx.store.getKeyBySpki(key.facts.spkiSha256)) throw new PasstoreError('exists', `${file}: this private key is already in the vault`);
  new Cancel(input.signal).check();
  const pkcs8 = key.key.export({ type: 'pkcs8', format: 'der' });
  try {
    await ctx.change(async (tx) => {
      await storeKey(tx, ctx.vault, host, pkcs8, key.facts, { state: 'pending', origin: 'imported', by: ctx.operator });
      await ctx.audit({ action: 'getkey', target: host!.fqdn, outcome: 'ok', detail: `${key.facts.type} ${key.facts.spkiSha256.slice(0, 16)}` }, tx);
    });
  } finally {
    pkcs8.fill(0);
  }
  ctx.out.line(`imported a ${key.facts.type} key for ${host.fqdn} (public key SHA-256 ${key.facts.spkiSha256.slice(0, 16)}…); it waits for its certificate`);
}
