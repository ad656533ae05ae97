/**
 * Checks before secrets: what a change on a host needs (its SSH key pinned, an address to
 * reach it) is checked before the operator is asked for any password, so a command that
 * cannot succeed is refused with nothing typed. The same checks run again where the
 * connection is made; these only move the refusal ahead of the prompts.
 */
import { PasstoreError } from '../errors.js';
import type { HostRow } from '../storage/store.js';
import { addressOf } from './remote.js';

/**
 * Why `host` cannot be reached for a change on it, or undefined when it can. `alternative`
 * is what the operator may do instead (such as `update --local`), added to the reason.
 */
export async function unreachableBecause(host: HostRow, alternative?: string): Promise<PasstoreError | undefined> {
  const instead = alternative ? `, or ${alternative}` : '';
  if (!host.sshHostKey) return new PasstoreError('policy', `${host.fqdn} has no pinned SSH host key: run host trust ${host.fqdn} first${instead}; nothing was asked or changed`);
  try {
    await addressOf(host.fqdn, host.address);
  } catch {
    return new PasstoreError('io', `${host.fqdn} has no address stored and its name does not resolve: set one with host address ${host.fqdn} IP${instead}; nothing was asked or changed`);
  }
  return undefined;
}
