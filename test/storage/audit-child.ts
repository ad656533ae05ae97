/**
 * The child process of audit-concurrency.test.ts (not a test itself): opens a session on
 * the vault named by its arguments, unlocks it with the passphrase on the first line of
 * standard input (never an argument), prints `ready`, waits for `go` on standard input,
 * then appends COUNT audit records as MODE says, as fast as it can:
 *
 *   node audit-child.js DB PASSWORD_FILE OPERATOR MODE COUNT STATE_DIR
 *
 *   standalone  session.audit(event): a record with no change around it (an unlock, a
 *               reveal, a failed command's record)
 *   change      session.context.change(tx => audit(event, tx)): a change that seals
 *               nothing, in the vault's transaction, with its record
 *
 * Ends with one JSON line: { ok, failed, errors } (the distinct error messages).
 */
import { createInterface } from 'node:readline';
import { defaultConfig, type Config } from '../../src/config.js';
import { errorMessage } from '../../src/errors.js';
import { Session } from '../../src/session.js';
import { ScriptedIo } from '../support/scripted.js';

const [db, passwordFile, operator, mode, countText, stateDir] = process.argv.slice(2);
if (!db || passwordFile === undefined || !operator || (mode !== 'standalone' && mode !== 'change') || !countText || !stateDir) {
  process.stderr.write('usage: audit-child DB PASSWORD_FILE OPERATOR standalone|change COUNT STATE_DIR\n');
  process.exit(2);
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const next = async (): Promise<string> => {
  const r = await lines.next();
  if (r.done) throw new Error('standard input ended');
  return r.value;
};

const config: Config = { ...defaultConfig(), db, dbPasswordFile: passwordFile || undefined, operator };
const io = new ScriptedIo();
io.answers.push(await next());
const session = await Session.open({ config, prompt: io, out: io, terminal: false, operator, unlock: { failureDelayMs: 10 }, stateDir });
await session.unlock(1);
process.stdout.write('ready\n');
if ((await next()) !== 'go') throw new Error('expected go');

let ok = 0;
let failed = 0;
const errors = new Set<string>();
for (let i = 0; i < Number(countText); i++) {
  const event = { action: `test-${mode}`, target: `child:${process.pid}`, outcome: 'ok' as const, detail: String(i) };
  try {
    if (mode === 'standalone') await session.audit(event);
    else await session.context.change((tx) => session.context.audit(event, tx));
    ok++;
  } catch (e) {
    failed++;
    errors.add(errorMessage(e));
  }
}
process.stdout.write(`${JSON.stringify({ ok, failed, errors: [...errors] })}\n`);
await session.close();
process.exit(0);
