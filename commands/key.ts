import { defineCommand, type Context, type Input } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import type { HostRow, KeyRow } from '../src/storage/store.js';
import { resolveHost } from '../src/targets.js';

/**
 * The key of HOST that no certificate or request refers to (a key imported with getkey
 * for the wrong host), chosen by the start of its public key SHA-256 when there are several.
 */
async function looseKey(ctx: Context, input: Input): Promise<{ host: HostRow; key: KeyRow }> {
  const host = await resolveHost(ctx.store, input.host('host'));
  const [keys, certs, requests] = await Promise.all([ctx.store.listKeys(host.id), ctx.store.listCertificates(host.id), ctx.store.listRequests(host.id)]);
  const prefix = input.has('key') ? input.word('key').toLowerCase() : '';
  const matching = keys.filter((k) => k.spkiSha256.startsWith(prefix));
  if (matching.length === 0) throw new PasstoreError('not-found', `${host.fqdn} has no private key${prefix ? ` whose public key SHA-256 starts with ${prefix}` : ''}`);
  const loose = matching.filter((k) => !certs.some((c) => c.keyId === k.id) && !requests.some((r) => r.keyId === k.id));
  if (loose.length === 0) {
    throw new PasstoreError('policy', `the private key${matching.length > 1 ? 's' : ''} of ${host.fqdn} ${matching.length > 1 ? 'have' : 'has'} a certificate or a request: kept (passtore never deletes those; crtreq or getcrt replaces them)`);
  }
  if (loose.length > 1) throw new PasstoreError('usage', `${host.fqdn} has ${loose.length} keys without a certificate (${loose.map((k) => k.spkiSha256.slice(0, 16)).join(', ')}): name one by the start of its public key SHA-256`);
  return { host, key: loose[0]! };
}

const KEY_ARG = { name: 'key', kind: 'word' as const, optional: true };

export default defineCommand({
  name: 'key',
  summary: 'Remove or reassign a private key that has no certificate',
  description:
    'key move gives a private key of HOST that no certificate or request refers to (one imported with getkey for the wrong host) to another host: it is decrypted and sealed again for that host in one step. key rm removes such a key. Both ask for confirmation and are audited; a key with a certificate or a request is never touched. KEY, the start of the public key SHA-256 that showcrt shows, chooses among several.',
  subcommands: {
    move: {
      usage: 'key move HOST OTHER [KEY]',
      summary: 'Give a key without a certificate to another host',
      args: [{ name: 'host', kind: 'host' }, { name: 'other', kind: 'host' }, KEY_ARG],
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const { host, key } = await looseKey(ctx, input);
        const other = await resolveHost(ctx.store, input.host('other'));
        if (other.id === host.id) throw new PasstoreError('usage', `the key already belongs to ${host.fqdn}`);
        const what = `${key.keyType} key ${key.spkiSha256.slice(0, 16)} of ${host.fqdn}`;
        if (!(await ctx.prompt.confirm(`Give the ${what} to ${other.fqdn}?`))) throw new PasstoreError('cancelled', 'nothing was changed');
        // Opened and sealed again inside the vault's transaction, under the data key current there.
        await ctx.change(async (tx) => {
          const pkcs8 = ctx.vault.openKey(key);
          try {
            await tx.moveKey(key.id, other.id, ctx.vault.sealKey(other.fqdn, key.spkiSha256, pkcs8));
            await ctx.audit({ action: 'key-move', target: other.fqdn, outcome: 'ok', detail: `${key.keyType} ${key.spkiSha256.slice(0, 16)} from ${host.fqdn}` }, tx);
          } finally {
            pkcs8.fill(0);
          }
        });
        ctx.out.line(`the ${what} now belongs to ${other.fqdn}; it waits for its certificate`);
      },
    },
    rm: {
      usage: 'key rm HOST [KEY]',
      summary: 'Remove a key without a certificate',
      args: [{ name: 'host', kind: 'host' }, KEY_ARG],
      needs: ['unlocked'],
      audited: true,
      async run(ctx, input) {
        const { host, key } = await looseKey(ctx, input);
        const what = `${key.keyType} key ${key.spkiSha256.slice(0, 16)} of ${host.fqdn}`;
        if (!(await ctx.prompt.confirm(`Remove the ${what}? It has no certificate; it cannot be recovered from passtore afterwards`))) throw new PasstoreError('cancelled', 'nothing was removed');
        await ctx.change(async (tx) => {
          await tx.deleteKey(key.id);
          await ctx.audit({ action: 'key-rm', target: host.fqdn, outcome: 'ok', detail: `${key.keyType} ${key.spkiSha256.slice(0, 16)}` }, tx);
        });
        ctx.out.line(`removed the ${what}`);
      },
    },
  },
});
