import { count as plural } from '../src/plural.js';
import { defineCommand } from '../src/command.js';
import { describeLogin } from '../src/remote/remote.js';
import { resolveHost } from '../src/targets.js';
import { daysLeft, parseCertificate } from '../src/x509/certificate.js';

export default defineCommand({
  name: 'showcrt',
  summary: 'One host\'s certificate in full, with its key and history',
  description: 'Shows the host\'s current certificate (subject, issuer, serial, DNS names, validity, the subjects of the issuing chain stored with it, SHA-256 fingerprints), its private key\'s public facts (never the key), and the history of certificates, keys and requests.',
  usage: 'showcrt HOST',
  args: [{ name: 'host', kind: 'host' }],
  needs: ['unlocked'],
  usesNoSecret: true,
  async run(ctx, input) {
    const host = await resolveHost(ctx.store, input.host('host'));
    const [certs, keys, requests] = await Promise.all([ctx.store.listCertificates(host.id), ctx.store.listKeys(host.id), ctx.store.listRequests(host.id)]);
    const current = certs.find((c) => c.state === 'current');
    ctx.out.line(`host:        ${host.fqdn}`);
    ctx.out.line(`reached as:  ${describeLogin(host)}${(await ctx.remote.deployKeyRows()).length > 0 ? ', deploy key first' : ', password'}`);
    if (current) {
      const days = daysLeft(current.notAfter);
      const key = keys.find((k) => k.id === current.keyId);
      ctx.out.line(`subject:     ${current.subject}`);
      ctx.out.line(`issuer:      ${current.issuer}`);
      ctx.out.line(`serial:      ${current.serial}`);
      ctx.out.line(`DNS names:   ${current.sans.split(',').join(', ') || '(none)'}`);
      ctx.out.line(`not before:  ${current.notBefore}`);
      ctx.out.line(`not after:   ${current.notAfter} (${ctx.out.paint(days < 0 ? `expired ${plural(-days, 'day')} ago` : `${plural(days, 'day')} left`, days < 0 ? 'bad' : days <= ctx.config.crtTtl ? 'warn' : 'good')})`);
      ctx.out.line(`chain:       ${chainSubjects(current.chainPem) || 'none stored'}`);
      ctx.out.line(`SHA-256:     ${current.fingerprintSha256}`);
      ctx.out.line(`public key:  SHA-256 ${current.spkiSha256}`);
      ctx.out.line(`private key: ${key ? `${key.keyType}, ${key.origin} ${key.createdAt.slice(0, 10)} by ${key.createdBy}, ${key.spkiSha256 === current.spkiSha256 ? 'matches' : 'DOES NOT MATCH'}` : 'missing'}`);
      ctx.out.line(`deployed:    ${current.deployedAt ?? 'never'}`);
    } else ctx.out.line('certificate: none');
    if (certs.length > 0) {
      ctx.out.line();
      ctx.out.table(['CERTIFICATE', 'SERIAL', 'NOT AFTER', 'STORED', 'BY'], certs.map((c) => [c.state, c.serial, c.notAfter.slice(0, 10), c.storedAt.slice(0, 10), c.storedBy]));
    }
    if (keys.length > 0) {
      ctx.out.line();
      ctx.out.table(['KEY', 'TYPE', 'PUBLIC KEY SHA-256', 'ORIGIN', 'CREATED'], keys.map((k) => [k.state, k.keyType, `${k.spkiSha256.slice(0, 32)}…`, k.origin, k.createdAt.slice(0, 10)]));
    }
    if (requests.length > 0) {
      ctx.out.line();
      ctx.out.table(['REQUEST', 'SUBJECT', 'DNS NAMES', 'CREATED', 'UPDATED'], requests.map((r) => [r.state, r.subject, r.sans, r.createdAt.slice(0, 10), r.updatedAt.slice(0, 10)]));
    }
  },
});

/** The subjects of a stored chain, issuer first ('; ' between them). */
function chainSubjects(pem: string | null): string {
  const blocks = pem?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => parseCertificate(b).facts.subject || '(empty subject)').join('; ');
}
