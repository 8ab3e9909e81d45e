/**
 * The CNI result of ADD (spec section 5), built from the router's attachment and the previous
 * plugin's result. 1.0.0 and 1.1.0 share a format; 0.4.0 marks each IP with `version: "4"`.
 * A prevResult is extended, never rewritten: our interfaces are appended, our IPs point at them.
 */
import type { CniVersion } from './spec.js';
import type { PrevResult } from './conf.js';
import type { CniAttachmentJson } from './wire.js';

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
  mtu?: number;
}

export interface CniIp {
  version?: '4';
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniResult {
  cniVersion: CniVersion;
  interfaces: Array<CniInterface | Record<string, unknown>>;
  ips: Array<CniIp | Record<string, unknown>>;
  routes: Array<{ dst: string; gw?: string } | Record<string, unknown>>;
  dns: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] } | Record<string, unknown>;
}

export function buildResult(version: CniVersion, a: CniAttachmentJson, prev: PrevResult | undefined): CniResult {
  const interfaces = [...(prev?.interfaces ?? [])];
  interfaces.push({ name: a.hostVeth });
  const containerIndex = interfaces.push({ name: a.ifname, mac: a.mac, sandbox: a.netns }) - 1;
  const ip: CniIp = { ...(version === '0.4.0' ? { version: '4' as const } : {}), address: a.cidr, ...(a.gateway === undefined ? {} : { gateway: a.gateway }), interface: containerIndex };
  const prevIps = (prev?.ips ?? []).map((p) => (version === '0.4.0' ? { version: '4', ...p } : withoutVersion(p)));
  const routes = [...(prev?.routes ?? []), ...a.routes];
  const dns = a.dns ? { ...(prev?.dns ?? {}), nameservers: a.dns.nameservers, search: a.dns.search } : (prev?.dns ?? {});
  return { cniVersion: version, interfaces, ips: [...prevIps, ip], routes, dns };
}

function withoutVersion(ip: Record<string, unknown>): Record<string, unknown> {
  const { version: _version, ...rest } = ip;
  void _version;
  return rest;
}

/** The IP addresses ("a.b.c.d/n") a result lists: CHECK compares them with the router's view. */
export function addressesOf(prev: PrevResult | undefined): string[] {
  return (prev?.ips ?? []).map((ip) => ip['address']).filter((a): a is string => typeof a === 'string');
}

/** The first IPv4 address and gateway of a delegated IPAM plugin's result. */
export function firstIpv4(result: unknown): { address: string; gateway?: string } | null {
  if (typeof result !== 'object' || result === null) return null;
  const ips = (result as { ips?: unknown }).ips;
  if (!Array.isArray(ips)) return null;
  for (const ip of ips as Array<Record<string, unknown>>) {
    const address = ip?.['address'];
    if (typeof address === 'string' && /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(address)) {
      const gateway = ip['gateway'];
      return { address, ...(typeof gateway === 'string' ? { gateway } : {}) };
    }
  }
  return null;
}
