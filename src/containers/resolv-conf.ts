/**
 * The resolv.conf a container gets when Loom's DNS serves on the host address: the host's
 * server, the Loom domain to search, and `ndots:1` so a dotted name goes out as typed first.
 * Bind-mounted over /etc/resolv.conf inside the container's own mount namespace (runtime.ts);
 * the host's file is never touched.
 */
import { isIPv4 } from 'node:net';
import { LoomError } from '../core/errors.js';

export interface ContainerDns {
  /** IPv4 address of the DNS server (the host's bridge address). */
  nameserver: string;
  /** Search domain, e.g. "loom.local". */
  domain: string;
}

const DOMAIN_RE = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/i;

/** Validated copy; ERR_INVALID_ARGUMENT for anything that could break the file's syntax. */
export function parseContainerDns(value: ContainerDns): ContainerDns {
  if (typeof value?.nameserver !== 'string' || !isIPv4(value.nameserver)) throw new LoomError('ERR_INVALID_ARGUMENT', 'container DNS: nameserver must be an IPv4 address');
  if (typeof value.domain !== 'string' || !DOMAIN_RE.test(value.domain)) throw new LoomError('ERR_INVALID_ARGUMENT', 'container DNS: invalid search domain');
  return { nameserver: value.nameserver, domain: value.domain.toLowerCase() };
}

export function containerResolvConf(dns: ContainerDns): string {
  const { nameserver, domain } = parseContainerDns(dns);
  return `# written by Loom for this container\nnameserver ${nameserver}\nsearch ${domain}\noptions ndots:1\n`;
}
