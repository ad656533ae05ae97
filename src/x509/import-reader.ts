/**
 * A reader thread of `importcert` (started by import.ts's scanDirectory for a large
 * directory): reads and parses its share of the files and posts back plain data. The
 * private keys go back in transferred buffers, so no copy of them stays in this thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readCandidate, type Candidate, type FileResult } from './import.js';

const { part } = workerData as { part: Candidate[] };
const results: FileResult[] = [];
const transfer: ArrayBuffer[] = [];
let since = 0;
for (const c of part) {
  const r = readCandidate(c);
  for (const k of r.keys) {
    // A buffer of its own (not a slice of a shared pool) can be transferred.
    const own = new Uint8Array(k.pkcs8.length);
    own.set(k.pkcs8);
    k.pkcs8.fill(0);
    k.pkcs8 = Buffer.from(own.buffer);
    transfer.push(own.buffer);
  }
  results.push(r);
  if (++since === 100) {
    parentPort!.postMessage({ progress: since });
    since = 0;
  }
}
parentPort!.postMessage({ progress: since });
parentPort!.postMessage({ results }, transfer);
