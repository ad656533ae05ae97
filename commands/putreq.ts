import { cancelledBy } from '../src/cancel.js';
import { defineCommand } from '../src/command.js';
import { PasstoreError } from '../src/errors.js';
import { parseRemoteFile } from '../src/names.js';
import { putRemoteFile } from '../src/remote/files.js';
import { now, resolveHost } from '../src/targets.js';

export default defineCommand({
  name: 'putreq',
  summary: 'Copy a host\'s certificate request to your workstation',
  description:
    'Copies the host\'s open request as <fqdn>.req to user@workstation (into DIR, or the login directory), over SFTP through the network guard. The password for user@workstation is asked at a no-echo prompt and not stored; a workstation that is not a vault host with a pinned key shows its host key fingerprint for confirmation. The request is then marked sent.',
  usage: 'putreq HOST user@workstation[:DIR]',
  args: [
    { name: 'host', kind: 'host' },
    { name: 'to', kind: 'word' },
  ],
  needs: ['unlocked'],
  asksSecret: true,
  audited: true,
  async run(ctx, input) {
    const host = await resolveHost(ctx.store, input.host('host'));
    const raw = input.word('to');
    const to = parseRemoteFile(raw.includes(':') ? raw : `${raw}:`, ctx.config.domain);
    const request = (await ctx.store.listRequests(host.id)).find((r) => r.state === 'created' || r.state === 'sent');
    if (!request) throw new PasstoreError('not-found', `${host.fqdn} has no open request; make one with crtreq`);
    // Ctrl-C while SSH connects ends it, nothing sent; once connected the copy runs to its end.
    const where = await putRemoteFile(ctx, to, `${host.fqdn}.req`, request.pem, 0o644, input.signal).catch((e: unknown) => {
      throw cancelledBy(e, input.signal) ? new PasstoreError('cancelled', 'cancelled; nothing sent') : e;
    });
    await ctx.change(async (tx) => {
      await tx.setRequestState(request.id, 'sent', now());
      await ctx.audit({ action: 'putreq', target: host.fqdn, outcome: 'ok', detail: where }, tx);
    });
    ctx.out.line(`copied the request of ${host.fqdn} to ${where}`);
  },
});
