/**
 * The `http` fetcher: a URL template (`[ca] http_url`, `{fqdn}` substituted) fetched
 * over HTTPS for each host with an open request, trusting `http_ca_bundle` when given.
 * A 404 means "not issued yet".
 */
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { isIP } from 'node:net';
import { PasstoreError } from '../errors.js';
import { addressOf } from '../remote/remote.js';
import type { Delivery, FetchContext, Fetcher } from './fetcher.js';
import type { RequestRow } from '../storage/store.js';

export class HttpFetcher implements Fetcher {
  readonly name = 'http';
  constructor(
    private readonly template: string,
    private readonly caBundle: string | undefined,
  ) {}

  async collect(pending: RequestRow[], ctx: FetchContext): Promise<Delivery[]> {
    const out: Delivery[] = [];
    const errors: string[] = [];
    const hosts = [...new Set(pending.map((r) => r.fqdn))];
    for (const fqdn of hosts) {
      const url = new URL(this.template.replaceAll('{fqdn}', encodeURIComponent(fqdn)));
      const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
      try {
        const address = await addressOf(url.hostname, null);
        const data = await ctx.guard.withAccess({ address, port }, () => this.#get(url, address));
        if (data) out.push({ source: url.toString(), data, settle: async () => undefined });
      } catch (e) {
        // One failed download does not drop the certificates the other hosts got.
        if (e instanceof PasstoreError && e.code !== 'io') throw e;
        errors.push(e instanceof PasstoreError ? e.message.replace(/^http fetcher: /, '') : `${url}: ${(e as Error).message}`);
      }
    }
    if (out.length === 0 && errors.length > 0) throw new PasstoreError('io', `http fetcher: ${errors.join('; ')}`);
    for (const e of errors) ctx.problem(e);
    return out;
  }

  #get(url: URL, address: string): Promise<Buffer | undefined> {
    const ca = this.caBundle ? readFileSync(this.caBundle) : undefined;
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const fail = (what: string) => new PasstoreError('io', `http fetcher: ${url}: ${what}`);
    return new Promise((resolve, reject) => {
      const req = request(
        { host: address, ...(isIP(url.hostname) ? {} : { servername: url.hostname }), port: url.port || undefined, path: `${url.pathname}${url.search}`, method: 'GET', headers: { host: url.host }, ...(ca ? { ca } : {}), timeout: 20_000 },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > 1024 * 1024) {
              reject(fail('the answer is larger than 1 MiB'));
              req.destroy();
            }
            else chunks.push(c);
          });
          // A connection cut after the headers ends the response early: 'aborted' and a
          // response 'error' (ECONNRESET), or a 'close' before 'end'. Each settles the
          // promise, so a cut download is a failure, never a hang or a silent success.
          res.on('aborted', () => reject(fail('the connection was cut before the whole answer arrived')));
          res.on('error', (e) => reject(fail(`the connection was cut before the whole answer arrived (${(e as NodeJS.ErrnoException).code ?? e.message})`)));
          res.on('close', () => {
            if (!res.complete) reject(fail('the connection was cut before the whole answer arrived'));
          });
          res.on('end', () => {
            if (!res.complete) reject(fail('the connection was cut before the whole answer arrived'));
            else if (res.statusCode === 404) resolve(undefined);
            else if (res.statusCode !== 200) reject(new PasstoreError('io', `http fetcher: ${url} answered ${res.statusCode}`));
            else resolve(Buffer.concat(chunks));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (e) => reject(fail((e as NodeJS.ErrnoException).code ?? e.message)));
      req.end();
    });
  }
}
