/**
 * The fault suite's Session child (not a test): opens the vault at argv[2] (SQLite, or
 * MariaDB with the password file in PASSTORE_TEST_DB_PASSWORD_FILE) as operator alice,
 * unlocks with argv[4], answers the command's prompts from argv[5...], and runs the
 * command line argv[3], printing what it printed. The parent sets PASSTORE_CRASH_AT, so
 * the process SIGKILLs itself at that step; exits with the command's status otherwise.
 */
import { ScriptedIo } from '../support/scripted.js';
import { Session } from '../../src/session.js';
import { defaultConfig } from '../../src/config.js';

const [db, line, passphrase, ...answers] = process.argv.slice(2);
if (!db || !line || !passphrase) {
  process.stderr.write('usage: kill-child DB LINE PASSPHRASE [ANSWER...]\n');
  process.exit(2);
}
const io = new ScriptedIo();
const config = { ...defaultConfig(), domain: 'example.org', db, dbPasswordFile: process.env.PASSTORE_TEST_DB_PASSWORD_FILE || undefined, operator: 'alice' };
const session = await Session.open({ config, prompt: io, out: io, terminal: true, operator: 'alice', stateDir: process.env.PASSTORE_STATE_DIR });
io.answers.push(passphrase);
await session.unlock(1);
io.answers.push(...answers);
const status = await session.execute(line);
await session.close();
process.stdout.write(`${io.text()}\n`);
process.exit(status);
