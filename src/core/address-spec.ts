/**
 * The address argument of `loom run`, `attach` and `expose` (Weave's syntax), parsed once at the
 * edge (CLI, HTTP API) and passed inward typed:
 *   (none) | "" | net:default   an address from the default subnet       {kind: 'default'}
 *   net:a.b.c.d/n               an address from that subnet              {kind: 'subnet', subnet}
 *                               (host bits must be zero; prefix 0..32)
 *   a.b.c.d/n                   exactly this address, in a.b.c.d/n      {kind: 'static', cidr}
 *                               (prefix 1..32, as an interface takes it)
 * Leading zeros in octets are accepted ("010.32.0.1" = 10.32.0.1), as IPAM always has. Anything
 * else is ERR_INVALID_ARGUMENT. Only syntax is checked here; whether a subnet lies inside the
 * range, or an address is free, is the IPAM's answer.
 */
import { LoomError } from './errors.js';
import { type Cidr, type NetworkCidr, formatCidr, parseCidr, parseNetworkCidr } from './net.js';

export type AddressSpec = { readonly kind: 'default' } | { readonly kind: 'subnet'; readonly subnet: NetworkCidr } | { readonly kind: 'static'; readonly cidr: Cidr };

/** The forms IPAM allocates from (everything but a static address). */
export type AllocationSpec = Exclude<AddressSpec, { kind: 'static' }>;

export const MAX_ADDRESS_SPEC_LENGTH = 64;

export const DEFAULT_ADDRESS_SPEC: AddressSpec = { kind: 'default' };

export function parseAddressSpec(value: unknown): AddressSpec {
  if (value === undefined || value === null) return DEFAULT_ADDRESS_SPEC;
  if (typeof value !== 'string') throw new LoomError('ERR_INVALID_ARGUMENT', 'address spec must be a string');
  const text = value.trim();
  if (text.length > MAX_ADDRESS_SPEC_LENGTH) throw new LoomError('ERR_INVALID_ARGUMENT', 'address spec too long');
  if (text === '' || text === 'net:default') return DEFAULT_ADDRESS_SPEC;
  try {
    if (text.startsWith('net:')) return { kind: 'subnet', subnet: parseNetworkCidr(text.slice(4), { leadingZeros: true }) };
    if (!text.includes('/')) throw new LoomError('ERR_INVALID_ARGUMENT', 'missing prefix length');
    return { kind: 'static', cidr: parseCidr(text, { leadingZeros: true, minPrefix: 1 }) };
  } catch (err) {
    const why = err instanceof LoomError ? `: ${err.message}` : '';
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid address "${text.slice(0, 40)}"${why}; expected a.b.c.d/n, net:a.b.c.d/n or net:default`);
  }
}

/** The spec back in its canonical text (`net:default` for the default); parseAddressSpec's inverse. */
export function formatAddressSpec(spec: AddressSpec): string {
  switch (spec.kind) {
    case 'default':
      return 'net:default';
    case 'subnet':
      return `net:${formatCidr(spec.subnet)}`;
    case 'static':
      return formatCidr(spec.cidr);
    default: {
      const never: never = spec;
      throw new LoomError('ERR_INTERNAL', `unknown address spec ${String(never)}`);
    }
  }
}
