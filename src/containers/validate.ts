/** Edge validation for the runtime: container names, run specs. ERR_INVALID_ARGUMENT on bad input. */
import { LoomError } from '../core/errors.js';
import { parseInterfaceName, parseIpv4, parseUnicastMac } from '../dataplane/addresses.js';
import { type Cidr, formatCidr } from '../core/net.js';
import { parseContainerId } from '../core/ids.js';
import { parseContainerDns } from './resolv-conf.js';
import type { RunSpec } from './types.js';

/** A DNS label (it becomes the hostname and the DNS name): 1-63 letters, digits, '-', not at the ends. */
const NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const MAX_ARGS = 256;
const MAX_ARG_BYTES = 4096;

export function parseContainerName(value: unknown): string {
  if (typeof value !== 'string' || !NAME_RE.test(value)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid container name ${JSON.stringify(value)?.slice(0, 70)}: letters, digits and '-', at most 63`);
  return value;
}

export function parseCommand(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_ARGS) throw new LoomError('ERR_INVALID_ARGUMENT', `command must be 1..${MAX_ARGS} arguments`);
  for (const a of value) {
    if (typeof a !== 'string' || a.length > MAX_ARG_BYTES || a.includes('\0')) throw new LoomError('ERR_INVALID_ARGUMENT', 'command arguments must be strings without NUL');
  }
  if (value[0] === '') throw new LoomError('ERR_INVALID_ARGUMENT', 'command must not be empty');
  return [...(value as string[])];
}

export function parseMtu(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 576 || value > 65535) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid MTU ${String(value)}`);
  return value;
}

export function parseRunSpec(value: RunSpec): RunSpec {
  const spec: RunSpec = {
    name: parseContainerName(value.name),
    cidr: interfacePrefix(value.cidr),
    cmd: parseCommand(value.cmd),
    bridge: parseInterfaceName(value.bridge),
    mtu: parseMtu(value.mtu),
  };
  if (value.mac !== undefined) spec.mac = parseUnicastMac(value.mac);
  if (value.id !== undefined) spec.id = parseContainerId(value.id);
  if (value.dns !== undefined) spec.dns = parseContainerDns(value.dns);
  if (value.gateway !== undefined) spec.gateway = parseIpv4(value.gateway);
  return spec;
}

/** The address is typed already (parsed at the edge or handed out by IPAM); an interface needs a prefix of 1..32. */
function interfacePrefix(cidr: Cidr): Cidr {
  if (!Number.isInteger(cidr.prefix) || cidr.prefix < 1 || cidr.prefix > 32) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid interface address ${formatCidr(cidr)}: prefix must be 1..32`);
  return cidr;
}
