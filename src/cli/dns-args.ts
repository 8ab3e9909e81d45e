import { LoomError } from '../core/errors.js';
import { parseContainerId } from '../core/ids.js';
import { isIPv4 } from '../dns/names.js';

export interface DnsTarget {
  addresses: string[];
  containerId: string | undefined;
}

/**
 * Weave's argument form `ADDRESS [ADDRESS...] [CONTAINER]`: IPv4 addresses, then at most one
 * container id, last. Anything else is ERR_INVALID_ARGUMENT naming the bad word.
 */
export function parseAddressesAndContainer(args: readonly string[]): DnsTarget {
  if (args.length > 1000) throw new LoomError('ERR_INVALID_ARGUMENT', 'too many arguments (at most 1000)');
  const addresses: string[] = [];
  let containerId: string | undefined;
  args.forEach((arg, i) => {
    if (isIPv4(arg)) {
      if (!addresses.includes(arg)) addresses.push(arg);
      return;
    }
    if (i !== args.length - 1) throw new LoomError('ERR_INVALID_ARGUMENT', `"${arg.slice(0, 60)}" is not an IPv4 address (only the last argument may be a container)`);
    try {
      containerId = parseContainerId(arg);
    } catch {
      throw new LoomError('ERR_INVALID_ARGUMENT', `"${arg.slice(0, 60)}" is neither an IPv4 address nor a container id`);
    }
  });
  return { addresses, containerId };
}
