/**
 * The `dir` fetcher: a drop folder (`[ca] dir`). Every regular file in it is a delivery;
 * afterwards it is moved to `done/` (stored or already known) or `refused/`, so it is
 * not read twice.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PasstoreError } from '../errors.js';
import type { Delivery, Fetcher } from './fetcher.js';

export class DirFetcher implements Fetcher {
  readonly name = 'dir';
  constructor(private readonly dir: string) {}

  async collect(): Promise<Delivery[]> {
    let names: string[];
    try {
      names = readdirSync(this.dir).sort();
    } catch (e) {
      throw new PasstoreError('io', `[ca] dir ${this.dir}: cannot read it (${(e as NodeJS.ErrnoException).code})`);
    }
    const out: Delivery[] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      const st = statSync(path);
      if (!st.isFile() || name.startsWith('.')) continue;
      if (st.size > 1024 * 1024) continue;
      out.push({
        source: path,
        data: readFileSync(path),
        settle: async (outcome) => {
          const to = join(this.dir, outcome === 'refused' ? 'refused' : 'done');
          mkdirSync(to, { recursive: true, mode: 0o700 });
          renameSync(path, join(to, name));
        },
      });
    }
    return out;
  }
}
