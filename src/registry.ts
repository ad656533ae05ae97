/**
 * The explicit, sorted registry of shell commands. It refuses duplicate names and
 * aliases, and feeds the session, the completer, `help` and the man-page test.
 */
import type { CommandDescriptor } from './command.js';
import add from '../commands/add.js';
import crtreq from '../commands/crtreq.js';
import getcrt from '../commands/getcrt.js';
import getkey from '../commands/getkey.js';
import importcert from '../commands/importcert.js';
import lcrt from '../commands/lcrt.js';
import showcrt from '../commands/showcrt.js';
import audit from '../commands/audit.js';
import backup from '../commands/backup.js';
import del from '../commands/delete.js';
import exit from '../commands/exit.js';
import get from '../commands/get.js';
import help from '../commands/help.js';
import host from '../commands/host.js';
import key from '../commands/key.js';
import keyfile from '../commands/keyfile.js';
import list from '../commands/list.js';
import lock from '../commands/lock.js';
import operator from '../commands/operator.js';
import passwd from '../commands/passwd.js';
import putcrt from '../commands/putcrt.js';
import putreq from '../commands/putreq.js';
import reconcile from '../commands/reconcile.js';
import rekey from '../commands/rekey.js';
import source from '../commands/source.js';
import sshkey from '../commands/sshkey.js';
import update from '../commands/update.js';

export class Registry {
  readonly commands: readonly CommandDescriptor[];
  #byName = new Map<string, CommandDescriptor>();

  constructor(commands: CommandDescriptor[]) {
    this.commands = [...commands].sort((a, b) => a.name.localeCompare(b.name));
    for (const c of this.commands) {
      for (const n of [c.name, ...(c.aliases ?? [])]) {
        if (this.#byName.has(n)) throw new Error(`duplicate command name or alias '${n}'`);
        this.#byName.set(n, c);
      }
    }
  }

  /** The command a name or alias stands for. */
  find(name: string): CommandDescriptor | undefined {
    return this.#byName.get(name);
  }

  /** Every name and alias, sorted (for completion). */
  names(): string[] {
    return [...this.#byName.keys()].sort();
  }
}

/** The shell's commands. */
export const registry = new Registry([
  add, audit, backup, crtreq, del, exit, get, getcrt, getkey, help, host, importcert, key, keyfile, lcrt, list, lock, operator, passwd, putcrt, putreq, reconcile, rekey, showcrt, source, sshkey, update,
]);
