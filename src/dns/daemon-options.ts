/**
 * The DNS options of `loom launch`, validated at the edge, and where the upstream resolvers come
 * from. Imported by the launch command: keep it free of sockets and the mesh.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../core/errors.js';
import { DEFAULT_DOMAIN, parseIPv4, parseName } from './names.js';
import type { UdpPathSetting } from './udp-listener.js';

export const DEFAULT_DNS_TTL_SECONDS = 1;
export const MAX_DNS_TTL_SECONDS = 86_400;
export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';
const MAX_LISTEN_ADDRESSES = 16;
/** Environment setting of how UDP queries are served (DnsServerInit.udpPath): auto, dgram or batched. */
export const UDP_PATH_ENV = 'LOOM_DNS_UDP';
const UDP_PATHS: readonly UdpPathSetting[] = ['auto', 'dgram', 'batched', 'native'];
/**
 * Environment switch of the native responder thread (DnsServerInit.nativeResponder): "0" keeps
 * the JS path under LOOM_DNS_UDP=auto; "1" or unset lets auto use it when its library loads.
 */
export const NATIVE_ENV = 'LOOM_DNS_NATIVE';

export interface DnsLaunchConfig {
  enabled: boolean;
  /** IPv4 addresses to serve on (UDP and TCP port 53) from the start; more come via listenOn. */
  listenAddresses: string[];
  /** Canonical, e.g. "loom.local". */
  domain: string;
  ttlSeconds: number;
  /** Explicit upstream resolv.conf; undefined = found at start (see findResolvConf). */
  resolvConf: string | undefined;
  /** From LOOM_DNS_UDP (default auto): how every DNS server of the daemon serves UDP. */
  udpPath: UdpPathSetting;
  /** From LOOM_DNS_NATIVE (default on): whether "auto" may use the native responder. */
  nativeResponder: boolean;
}

/** As commander hands them over. `dns: false` is --no-dns. */
export interface RawDnsOptions {
  dns?: boolean;
  dnsListenAddress?: string;
  dnsDomain?: string;
  dnsTtl?: string;
  dnsResolvConf?: string;
}

/** Throws ERR_INVALID_ARGUMENT naming the option (ERR_INVALID_CONFIG for a bad LOOM_DNS_UDP or LOOM_DNS_NATIVE). */
export function parseDnsOptions(raw: RawDnsOptions, env: NodeJS.ProcessEnv = {}): DnsLaunchConfig {
  const listenAddresses = raw.dnsListenAddress === undefined ? [] : parseListenAddresses(raw.dnsListenAddress);
  let domain: string;
  try {
    domain = parseName(raw.dnsDomain ?? DEFAULT_DOMAIN);
  } catch {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --dns-domain "${String(raw.dnsDomain).slice(0, 80)}": expected a DNS name like loom.local.`);
  }
  const ttlSeconds = raw.dnsTtl === undefined ? DEFAULT_DNS_TTL_SECONDS : parseTtl(raw.dnsTtl);
  const resolvConf = raw.dnsResolvConf;
  if (resolvConf !== undefined && (resolvConf.length === 0 || resolvConf.length > 1024 || resolvConf.includes('\0'))) {
    throw new LoomError('ERR_INVALID_ARGUMENT', 'invalid --dns-resolv-conf: expected a file path');
  }
  return { enabled: raw.dns ?? true, listenAddresses, domain, ttlSeconds, resolvConf, udpPath: parseUdpPath(env[UDP_PATH_ENV]), nativeResponder: parseNativeSwitch(env[NATIVE_ENV]) };
}

function parseNativeSwitch(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === '1') return true;
  if (value === '0') return false;
  throw new LoomError('ERR_INVALID_CONFIG', `dns: ${NATIVE_ENV} must be 0 or 1`);
}

function parseUdpPath(value: string | undefined): UdpPathSetting {
  if (value === undefined || value === '') return 'auto';
  if (!(UDP_PATHS as readonly string[]).includes(value)) throw new LoomError('ERR_INVALID_CONFIG', `dns: udp path must be auto, dgram, batched or native (${UDP_PATH_ENV})`);
  return value as UdpPathSetting;
}

function parseListenAddresses(text: string): string[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length > MAX_LISTEN_ADDRESSES) throw new LoomError('ERR_INVALID_ARGUMENT', `too many --dns-listen-address values (at most ${MAX_LISTEN_ADDRESSES})`);
  const out: string[] = [];
  for (const p of parts) {
    try {
      const address = parseIPv4(p);
      if (!out.includes(address)) out.push(address);
    } catch {
      throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --dns-listen-address "${p.slice(0, 40)}": expected IPv4 addresses separated by commas`);
    }
  }
  return out;
}

function parseTtl(text: string): number {
  const n = /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n > MAX_DNS_TTL_SECONDS) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --dns-ttl "${text.slice(0, 20)}": expected 0-${MAX_DNS_TTL_SECONDS} seconds`);
  return n;
}

/** The launch arguments that reproduce `config` (for the re-executed background daemon). */
export function dnsArgs(config: DnsLaunchConfig): string[] {
  return [
    ...(config.enabled ? [] : ['--no-dns']),
    ...(config.listenAddresses.length > 0 ? ['--dns-listen-address', config.listenAddresses.join(',')] : []),
    '--dns-domain', config.domain,
    '--dns-ttl', String(config.ttlSeconds),
    ...(config.resolvConf === undefined ? [] : ['--dns-resolv-conf', config.resolvConf]),
  ];
}

export interface ResolvConfLocations {
  /** Our network namespace (default /proc/self/ns/net). */
  selfNetns?: string;
  /** Where `ip netns add` pins named namespaces (default /run/netns). */
  namedNetnsDir?: string;
  /** Where `ip netns exec` takes per-namespace files from (default /etc/netns). */
  etcNetnsDir?: string;
}

/**
 * The resolv.conf to forward to. `ip netns exec NS` bind-mounts /etc/netns/NS/resolv.conf over
 * /etc/resolv.conf, but a daemon that entered NS another way (nsenter, a container runtime) sees
 * the host's file, whose resolvers (often 127.0.0.53) are unreachable from NS. So: when our
 * network namespace is a named one (same device and inode as /run/netns/NS) and
 * /etc/netns/NS/resolv.conf exists, that file; otherwise /etc/resolv.conf. Never throws.
 */
export function findResolvConf(locations: ResolvConfLocations = {}): string {
  const namedDir = locations.namedNetnsDir ?? '/run/netns';
  const etcDir = locations.etcNetnsDir ?? '/etc/netns';
  try {
    const self = statSync(locations.selfNetns ?? '/proc/self/ns/net');
    for (const name of readdirSync(namedDir).slice(0, 4096)) {
      const pinned = statSync(join(namedDir, name), { throwIfNoEntry: false });
      if (!pinned || pinned.ino !== self.ino || pinned.dev !== self.dev) continue;
      const candidate = join(etcDir, name, 'resolv.conf');
      return statSync(candidate, { throwIfNoEntry: false })?.isFile() ? candidate : DEFAULT_RESOLV_CONF;
    }
  } catch {
    // No /run/netns, or /proc unreadable: not in a named namespace as far as we can tell.
  }
  return DEFAULT_RESOLV_CONF;
}
