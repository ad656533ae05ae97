/**
 * A child for the kill tests: opens the vault at argv[2] (SQLite) as operator alice,
 * answering prompts from argv[4...], and runs the command line argv[3]. The parent sets
 * PASSTORE_CRASH_AT so the process kills itself at a named step.
 */
import { ScriptedIo } from '../support/scripted.js';
import { Session } from '../../src/session.js';
import { defaultConfig } from '../../src/config.js';
import { restoreFromBackup } from '../../src/restore.js';

const [db, line, ...answers] = process.argv.slice(2);
const io = new ScriptedIo();
const config = { ...defaultConfig(), domain: 'example.org', db: db!, operator: 'alice' };
if (line!.startsWith('restore ')) {
  io.answers.push(...answers);
  await restoreFromBackup(config, line!.slice('restore '.length), 'alice', io, io, { stateDir: process.env.PASSTORE_STATE_DIR });
  process.exit(0);
}
const session = await Session.open({ config, prompt: io, out: io, terminal: true, operator: 'alice', stateDir: process.env.PASSTORE_STATE_DIR });
io.answers.push(answers.shift()!);
await session.unlock(1);
io.answers.push(...answers);
const status = await session.execute(line!);
await session.close();
process.stdout.write(io.text());
process.exit(status);
