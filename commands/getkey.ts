import { defineCommand } from '../src/command.js';
import { readLocalFile } from '../src/targets.js';
import { isRemoteFile, parseRemoteFile } from '../src/names.js';
import { fetchRemoteFile } from '../src/remote/files.js';
import { PasstoreError } from '../src/errors.js';
import { resolveHosts } from '../src/targets.js';
import { storeKey } from '../src/x509/cert-store.js';
import { decryptKey, readObjects } from '../src/x509/pem.js';

export default defineCommand({
  name: 'getkey',
  summary: 'Import an existing private key for a host',
  description:
    'Imports the one private key held in FILE (PEM or DER; an encrypted PEM key asks for its passphrase) for HOST, stored encrypted and waiting for its certificate. Keys weaker than RSA 2048 or EC P-256 are refused. Use it only for a key made elsewhere; crtreq makes new ones. user@host:PATH fetches it over SFTP through the network guard (as root with the stored password on a vault host with a pinned key; otherwise that user\'s password is asked).',
  usage: 'getkey HOST FILE|user@host:PATH',
  args: [
    { name: 'host', kind: 'host' },
    { name: 'file', kind: 'path' },
  ],
  needs: ['unlocked'],
  asksSecret: (input) => isRemoteFile(input.word('file')),
  audited: true,
  async run(ctx, input) {
    const [host] = await resolveHosts(ctx.store, { glob: input.host('host'), wild: false });
    const file = input.word('file');
    const data = isRemoteFile(file) ? await fetchRemoteFile(ctx, parseRemoteFile(file, ctx.config.domain, { pathRequired: true })) : readLocalFile(file);
    const { objects, problems } = readObjects(data);
    data.fill(0);
    const keys = objects.filter((o) => o.kind !== 'certificate');
    if (keys.length !== 1) {
      throw new PasstoreError('mismatch', `${file}: expected one private key, found ${keys.length}${problems.length ? ` (${problems[0]})` : ''}`);
    }
    const found = keys[0]!;
    let key;
    if (found.kind === 'encrypted-key') {
      if (ctx.scripted) throw new PasstoreError('policy', 'getkey of an encrypted key asks for its passphrase and cannot run from a script');
      const passphrase = await ctx.prompt.secret(`Passphrase for the encrypted key in ${file}`);
      try {
        key = decryptKey(found.pem, passphrase.bytes());
      } finally {
        passphrase.wipe();
      }
    } else if (found.kind === 'key') key = { key: found.key, facts: found.facts };
    else throw new PasstoreError('mismatch', `${file}: no private key in it`);
    if (await ctx.store.getKeyBySpki(key.facts.spkiSha256)) throw new PasstoreError('exists', `${file}: this private key is already in the vault`);
    const pkcs8 = key.key.export({ type: 'pkcs8', format: 'der' });
    try {
      await ctx.change(async (tx) => {
        await storeKey(tx, ctx.vault, host!, pkcs8, key.facts, { state: 'pending', origin: 'imported', by: ctx.operator });
        await ctx.audit({ action: 'getkey', target: host!.fqdn, outcome: 'ok', detail: `${key.facts.type} ${key.facts.spkiSha256.slice(0, 16)}` }, tx);
      });
    } finally {
      pkcs8.fill(0);
    }
    ctx.out.line(`imported a ${key.facts.type} key for ${host!.fqdn} (public key SHA-256 ${key.facts.spkiSha256.slice(0, 16)}…); it waits for its certificate`);
  },
});
