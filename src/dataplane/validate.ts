/**
 * parseDesiredDataplane: the one way from untrusted config (API body, daemon flags) to a
 * DesiredDataplane. Throws ERR_INVALID_ARGUMENT with the first problem found.
 */
import { z } from 'zod';
import { LoomError } from '../core/errors.js';
import { parsePeerName } from '../core/ids.js';
import { parseInterfaceName, parseIpv4, parseUnicastMac } from './addresses.js';
import type { BridgeFdbEntry, DesiredDataplane, PeerSpec, RemoteMac, TapSpec } from './types.js';

const MAX_PEERS = 1024;
const MAX_REMOTE_MACS = 65536;

const port = z.number().int().min(1).max(65535);
const mtu = z.number().int().min(576).max(65535);

const schema = z.object({
  bridge: z.object({ name: z.string(), mtu, mac: z.string().optional() }),
  vxlan: z.object({
    name: z.string(),
    vni: z.number().int().min(1).max(0xffffff),
    port,
    mtu,
    localIp: z.string().nullable(),
    localBypass: z.literal(false).default(false),
  }),
  peers: z.array(z.object({ name: z.string(), underlayIp: z.string(), via: z.union([z.literal('fastdp'), z.literal('tap'), z.object({ relayPort: port })]) })).max(MAX_PEERS),
  remoteMacs: z.array(z.object({ mac: z.string(), peer: z.string() })).max(MAX_REMOTE_MACS),
  // Absent in what older versions remembered (and in the port mode): no tap.
  tap: z.object({ name: z.string(), mtu, gsoMaxSize: z.number().int().min(1).max(65536) }).nullable().default(null),
  bridgeFdb: z.array(z.object({ mac: z.string(), dev: z.string() })).max(MAX_REMOTE_MACS).default([]),
});

export function parseDesiredDataplane(value: unknown): DesiredDataplane {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.join('.') : '';
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid dataplane config at "${where}": ${issue?.message ?? 'invalid'}`);
  }
  const v = parsed.data;
  const bridgeName = parseInterfaceName(v.bridge.name);
  const vxlanName = parseInterfaceName(v.vxlan.name);
  if (bridgeName === vxlanName) throw new LoomError('ERR_INVALID_ARGUMENT', 'bridge and vxlan device need different names');
  const peers: PeerSpec[] = [];
  const seen = new Set<string>();
  const relayPorts = new Set<number>();
  for (const p of v.peers) {
    const name = parsePeerName(p.name);
    if (seen.has(name)) throw new LoomError('ERR_INVALID_ARGUMENT', `peer ${name} listed twice`);
    seen.add(name);
    if (typeof p.via === 'object') {
      // The relay tells peers apart by the port the kernel sends to: one port per peer.
      if (p.via.relayPort === v.vxlan.port) throw new LoomError('ERR_INVALID_ARGUMENT', `relay port of peer ${name} must differ from the vxlan port ${v.vxlan.port}`);
      if (relayPorts.has(p.via.relayPort)) throw new LoomError('ERR_INVALID_ARGUMENT', `relay port ${p.via.relayPort} used by two peers`);
      relayPorts.add(p.via.relayPort);
    }
    peers.push({ name, underlayIp: parseIpv4(p.underlayIp), via: typeof p.via === 'object' ? { relayPort: p.via.relayPort } : p.via });
  }
  const remoteMacs: RemoteMac[] = [];
  const macs = new Set<string>();
  for (const r of v.remoteMacs) {
    const mac = parseUnicastMac(r.mac);
    const peer = parsePeerName(r.peer);
    if (!seen.has(peer)) throw new LoomError('ERR_INVALID_ARGUMENT', `remote MAC ${mac} belongs to unknown peer ${peer}`);
    if (macs.has(mac)) throw new LoomError('ERR_INVALID_ARGUMENT', `remote MAC ${mac} listed twice`);
    macs.add(mac);
    remoteMacs.push({ mac, peer });
  }
  let tap: TapSpec | null = null;
  if (v.tap !== null) {
    const tapName = parseInterfaceName(v.tap.name);
    if (tapName === bridgeName || tapName === vxlanName) throw new LoomError('ERR_INVALID_ARGUMENT', 'the tap needs a name of its own');
    tap = { name: tapName, mtu: v.tap.mtu, gsoMaxSize: v.tap.gsoMaxSize };
  }
  const bridgeFdb: BridgeFdbEntry[] = [];
  const pinned = new Set<string>();
  for (const e of v.bridgeFdb) {
    const mac = parseUnicastMac(e.mac);
    if (tap === null) throw new LoomError('ERR_INVALID_ARGUMENT', 'bridge FDB entries need a tap');
    if (e.dev !== vxlanName && e.dev !== tap.name) throw new LoomError('ERR_INVALID_ARGUMENT', `bridge FDB entry ${mac} on ${e.dev.slice(0, 20)}: only the vxlan device or the tap`);
    if (pinned.has(mac)) throw new LoomError('ERR_INVALID_ARGUMENT', `bridge FDB entry ${mac} listed twice`);
    pinned.add(mac);
    bridgeFdb.push({ mac, dev: e.dev });
  }
  return {
    bridge: { name: bridgeName, mtu: v.bridge.mtu, ...(v.bridge.mac === undefined ? {} : { mac: parseUnicastMac(v.bridge.mac) }) },
    vxlan: { name: vxlanName, vni: v.vxlan.vni, port: v.vxlan.port, mtu: v.vxlan.mtu, localIp: v.vxlan.localIp === null ? null : parseIpv4(v.vxlan.localIp), localBypass: false },
    peers,
    remoteMacs,
    tap,
    bridgeFdb,
  };
}
