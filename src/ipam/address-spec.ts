/**
 * The one parser of the address argument of `loom run`, `attach` and `expose` (Weave's syntax):
 *   (none) | net:default   an address from the default subnet
 *   net:a.b.c.d/n          an address from that subnet (host bits must be zero)
 *   a.b.c.d/n              exactly this address, in the subnet a.b.c.d/n (a static claim)
 * Anything else is ERR_INVALID_ARGUMENT. Only syntax is checked here; whether the subnet lies
 * inside the range, or the address is free, is the IPAM's answer.
 */
import { LoomError } from '../core/errors.js';
import { formatAddress, formatCidr, parseAddressInCidr, parseCidr } from './cidr.js';

export type AddressSpec =
  | { kind: 'default' }
  | { kind: 'subnet'; subnet: string }
  | { kind: 'static'; cidr: string };

/** What `allocate` takes: the automatic forms only. */
export type AllocateSpec = 'net:default' | `net:${string}` | undefined;

const MAX_SPEC_LENGTH = 64;

export function parseAddressSpec(value: unknown): AddressSpec {
  if (value === undefined || value === null) return { kind: 'default' };
  if (typeof value !== 'string') throw new LoomError('ERR_INVALID_ARGUMENT', 'address spec must be a string');
  const text = value.trim();
  if (text.length > MAX_SPEC_LENGTH) throw new LoomError('ERR_INVALID_ARGUMENT', 'address spec too long');
  if (text === '' || text === 'net:default') return { kind: 'default' };
  try {
    if (text.startsWith('net:')) return { kind: 'subnet', subnet: formatCidr(parseCidr(text.slice(4))) };
    if (!text.includes('/')) throw new LoomError('ERR_INVALID_ARGUMENT', 'missing prefix length');
    const { address, cidr } = parseAddressInCidr(text);
    return { kind: 'static', cidr: `${formatAddress(address)}/${cidr.prefix}` };
  } catch (err) {
    const why = err instanceof LoomError ? `: ${err.message}` : '';
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid address "${text.slice(0, 40)}"${why}; expected a.b.c.d/n, net:a.b.c.d/n or net:default`);
  }
}

/** The spec back in its canonical text (`net:default` for the default). */
export function formatAddressSpec(spec: AddressSpec): string {
  switch (spec.kind) {
    case 'default':
      return 'net:default';
    case 'subnet':
      return `net:${spec.subnet}`;
    case 'static':
      return spec.cidr;
    default: {
      const never: never = spec;
      throw new LoomError('ERR_INTERNAL', `unknown address spec ${String(never)}`);
    }
  }
}
