/**
 * Every parser that reads bytes or text from outside the process, as one list of fuzz targets
 * (issue 12, "Hostile input"). Each target feeds one generated input to the real parser.
 *
 * Contract of a target: `run` returns 'accepted' or 'rejected' (for parsers that answer "no" with
 * a value: null, false, an error reply), or throws. A thrown error is a rejection when
 * `isRejection` says so and it carries a non-empty message (the reason); anything else thrown
 * (TypeError, RangeError, a failed assertion) is a bug. Hangs and memory growth are the runner's
 * business (./harness.ts, ./run.ts). Inputs are bounded: at most a few KiB each.
 *
 * `families` names which parser family of the issue a target covers; test/unit/fuzz/fuzz.test.ts
 * checks that every family and every API route keeps a target.
 */
import { syncBuiltinESMExports } from 'node:module';
import childProcess from 'node:child_process';
import http from 'node:http';
import { EventEmitter } from 'node:events';
import * as dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { z } from 'zod';
import { isLoomError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import { parsePeerUid, type PeerName, type PeerUid } from '../../src/core/ids.js';
import { createHello, decodeHello, encodeHello, HELLO_NONCE_BYTES } from '../../src/mesh/handshake.js';
import { generateEphemeralKeyPair } from '../../src/mesh/crypto.js';
import { decodeControlMessage, encodeControlMessage } from '../../src/mesh/protocol.js';
import { decodeEntries, encodeEntries } from '../../src/mesh/topology-codec.js';
import { decodeDigest, TopologyDigest } from '../../src/mesh/topology-digest.js';
import { encodeFrame, FrameDecoder } from '../../src/mesh/framing.js';
import { decodeIpamMessage, encodeIpamMessage } from '../../src/ipam/messages.js';
import { parseCidr } from '../../src/ipam/cidr.js';
import { Ring } from '../../src/ipam/ring.js';
import { decodeRing, encodeRing } from '../../src/ipam/ring-codec.js';
import { decodeRecords, encodeRecords } from '../../src/dns/codec.js';
import type { DnsRecord } from '../../src/dns/record.js';
import { DnsServer } from '../../src/dns/server.js';
import { parseResolvConf } from '../../src/dns/resolv-conf.js';
import { DataplaneGossipData, decodeDataplaneGossip } from '../../src/dataplane/controller/index.js';
import { decodeBatchBody, decodeRelayPacket, deriveDataKeys, encodeBatchBody, encodeRelayPacket, type RelayHeader } from '../../src/dataplane/relay/index.js';
import { decodeHeader, VNET_HEADER_BYTES, vnetHeaderOk } from '../../src/dataplane/relay/wire.js';
import { openPacket } from '../../src/dataplane/relay/seal.js';
import { decodeAttrs, decodeMessages, encodeGetLink, encodeSetVxlanLocalBypass } from '../../src/os/netlink-codec.js';
import { parseWith } from '../../src/api/validate.js';
import type { RouteContract } from '../../src/api/contract.js';
import { API_ROUTE_TABLES } from '../../src/client/index.js';
import { decodeStdin, parseCniArgs, parseEnv, parseNetConf } from '../../src/cni/conf.js';
import { runPlugin } from '../../src/cni/plugin.js';
import { CNI_COMMANDS, CniError } from '../../src/cni/spec.js';
import { CNI_ROUTES } from '../../src/cni/api.js';
import type { RouterTransport } from '../../src/cni/router-client.js';
import { DockerPlugin } from '../../src/docker/plugin.js';
import { memoryStateStore } from '../../src/docker/state.js';
import { parseEvent, parseInspect } from '../../src/docker/engine.js';
import type { ContainerAddresses } from '../../src/containers/daemon.js';
import { LoomError } from '../../src/core/errors.js';
import { parseCidr as parseCoreCidr } from '../../src/core/net.js';
import { buildProgram, runCli } from '../../src/cli/run.js';
import type { CliContext } from '../../src/cli/context.js';
import { parseLaunchOptions, type RawLaunchOptions } from '../../src/daemon/options.js';
import { CommanderError } from 'commander';
import { FakeDnsMesh } from '../unit/dns/fake-mesh.js';
import { hostileBuffer, hostileBytes, hostileText, objectWithKeys, PLAUSIBLE_STRINGS } from './mutate.js';
import { CNI_ATTACHMENT, CNI_ENV } from '../helpers/cni-fixtures.js';

export type Verdict = 'accepted' | 'rejected';

/** The parser families issue 12 names; each must keep at least one target. */
export const PARSER_FAMILIES = ['handshake', 'gossip', 'relay', 'virtio-net', 'netlink', 'dns', 'http-api', 'cni', 'docker', 'cli'] as const;
export type ParserFamily = (typeof PARSER_FAMILIES)[number];

export interface FuzzTarget<T = unknown> {
  readonly name: string;
  readonly families: readonly ParserFamily[];
  readonly arbitrary: fc.Arbitrary<T>;
  run(input: T): Verdict | Promise<Verdict>;
  /** True for the errors this parser rejects bad input with. */
  isRejection(err: unknown): boolean;
  /** Longest one case may take before the runner calls it a hang (default 1,000 ms). */
  readonly caseTimeoutMs?: number;
  /** For API routes: "table.route" of each route this target feeds. */
  readonly routes?: readonly string[];
}

function target<T>(t: FuzzTarget<T>): FuzzTarget {
  return t;
}

/** Runs a parser that throws to reject: 'accepted' when it returns. */
function accepts(parse: () => unknown): Verdict {
  parse();
  return 'accepted';
}

const isLoomRejection = (err: unknown): boolean => isLoomError(err);

// ----- samples made by the real encoders -------------------------------------------------------

// Fixed names, keys and uids: the same seed gives the same cases on every run.
const PEERS = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'] as [PeerName, PeerName, PeerName];

function uid(i: number): PeerUid {
  return parsePeerUid(i.toString(16).padStart(16, '0'));
}

function helloSamples(): Uint8Array[] {
  const identity = { name: PEERS[0], uid: uid(1), nickname: 'höst-ñ' };
  const keyPair = generateEphemeralKeyPair();
  return [false, true].map((passwordSet) =>
    encodeHello({ ...createHello({ identity, minVersion: 1, maxVersion: 2, passwordSet, listenPort: 6783, keyPair }), publicKey: new Uint8Array(32).fill(7), random: new Uint8Array(HELLO_NONCE_BYTES).fill(9) }),
  );
}

function controlSamples(): Uint8Array[] {
  const payload = Uint8Array.from([1, 2, 3, 4, 5]);
  return [
    encodeControlMessage({ type: 'heartbeat' }),
    encodeControlMessage({ type: 'gossip', channel: 'topology', payload }),
    encodeControlMessage({ type: 'gossip-unicast', channel: 'ipam', src: PEERS[0], dst: PEERS[1], payload }),
    encodeControlMessage({ type: 'gossip-broadcast', channel: 'dns', src: PEERS[2], payload }),
    encodeControlMessage({ type: 'goodbye', reason: 'shutting down' }),
  ];
}

function entrySamples(): Uint8Array[] {
  const entry = (i: 0 | 1 | 2, connections: number) => ({
    name: PEERS[i],
    nickname: `host-${i}`,
    uid: uid(10 + i),
    version: i + 1,
    connections: PEERS.slice(0, connections).map((name, j) => ({ name, address: `10.0.0.${j + 2}:6783`, outbound: j % 2 === 0, established: true })),
  });
  return [encodeEntries([entry(0, 2)]), encodeEntries([entry(0, 0), entry(1, 3), entry(2, 1)])];
}

function ringSamples(): Uint8Array[] {
  const ring = Ring.initial(parseCidr('10.32.0.0/12'), [...PEERS]);
  ring.setStats(PEERS[0], 100, 3);
  return [encodeRing(ring), encodeRing(Ring.initial(parseCidr('10.40.0.0/24'), [PEERS[1]]))];
}

function recordSamples(): Uint8Array[] {
  const records: DnsRecord[] = [
    { name: 'web.loom.local', address: '10.32.0.1', containerId: 'c1' as DnsRecord['containerId'], origin: PEERS[0], version: 1, tombstone: false },
    { name: 'db.loom.local', address: '10.32.0.2', containerId: 'c2' as DnsRecord['containerId'], origin: PEERS[1], version: 7, tombstone: true },
  ];
  return [encodeRecords(records, records.length), encodeRecords(records.slice(0, 1), 1)];
}

function dataplaneSamples(): Uint8Array[] {
  return [
    new DataplaneGossipData([{ peer: PEERS[0], version: 3, macs: ['02:aa:00:00:00:01', '02:aa:00:00:00:02'] }]).encode(),
    new DataplaneGossipData([
      { peer: PEERS[1], version: 1, macs: [] },
      { peer: PEERS[2], version: 9, macs: ['0a:bb:00:00:00:03'] },
    ]).encode(),
  ];
}

const RELAY_KEYS = deriveDataKeys({ send: Buffer.alloc(32, 0x11), receive: Buffer.alloc(32, 0x22) });
/** The key a sealed sample opens under. */
const RELAY_KEY: Buffer = RELAY_KEYS.send;

function relayHeader(over: Partial<RelayHeader> = {}): RelayHeader {
  return { type: 'data', sealed: false, ttl: 16, source: PEERS[0], destination: PEERS[2], hop: PEERS[1], counter: 7, ...over };
}

function tapFrame(): Buffer {
  const frame = Buffer.alloc(VNET_HEADER_BYTES + 14 + 20 + 20);
  frame[VNET_HEADER_BYTES + 12] = 0x08; // IPv4
  return frame;
}

function relaySamples(): Uint8Array[] {
  const body = Buffer.concat([Buffer.from('0800000000000100', 'hex'), Buffer.alloc(20, 0xff)]);
  return [
    encodeRelayPacket(relayHeader(), body, null),
    encodeRelayPacket(relayHeader({ sealed: true, counter: 2 ** 40 + 7 }), body, RELAY_KEY),
    encodeRelayPacket(relayHeader({ type: 'frameBatch' }), encodeBatchBody([tapFrame(), tapFrame()]), null),
  ];
}

function vnetSamples(): Uint8Array[] {
  const plain = tapFrame();
  const tso = tapFrame();
  tso[0] = 0x01; // NEEDS_CSUM
  tso[1] = 0x01; // GSO TCPv4
  tso.writeUInt16LE(54, 2);
  tso.writeUInt16LE(1448, 4);
  tso.writeUInt16LE(34, 6);
  tso.writeUInt16LE(16, 8);
  return [plain, tso];
}

function dnsQuerySamples(): Uint8Array[] {
  const q = (name: string, type: string, extra: Partial<dnsPacket.Packet> = {}): Buffer =>
    dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: type as dnsPacket.RecordType, name, class: 'IN' }], ...extra });
  return [
    q('web.loom.local', 'A'),
    q('web', 'ANY'),
    q('1.0.32.10.in-addr.arpa', 'PTR'),
    q('nope.loom.local', 'AAAA'),
    q('web.loom.local', 'A', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] }),
  ];
}

// ----- byte parsers ------------------------------------------------------------------------------

const MAX_BYTES = 2048;

const byteTargets: FuzzTarget[] = [
  target({
    name: 'mesh.decodeHello',
    families: ['handshake'],
    arbitrary: hostileBytes(helloSamples(), 512),
    run: (b) => accepts(() => decodeHello(b)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'mesh.decodeControlMessage',
    families: ['handshake', 'gossip'],
    arbitrary: hostileBytes(controlSamples(), 512),
    run: (b) => accepts(() => decodeControlMessage(b)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'mesh.FrameDecoder',
    families: ['handshake'],
    // A stream cut into chunks: frames of valid control messages, mutated, then split anywhere.
    arbitrary: fc.tuple(hostileBytes(controlSamples().map((m) => encodeFrame(m)), 1024), fc.array(fc.nat({ max: 1024 }), { maxLength: 4 }), fc.constantFrom(64, 1024, 1 << 20)),
    run: ([stream, cuts, limit]) => {
      const decoder = new FrameDecoder(limit);
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      let from = 0;
      for (const to of [...points, stream.length]) {
        decoder.push(stream.subarray(from, to));
        from = to;
        while (decoder.next() !== null);
      }
      if (decoder.bufferedBytes > stream.length) throw new Error(`decoder holds ${decoder.bufferedBytes} bytes of a ${stream.length}-byte stream`);
      return 'accepted';
    },
    isRejection: isLoomRejection,
  }),
  target({
    name: 'mesh.decodeEntries',
    families: ['gossip'],
    arbitrary: hostileBytes(entrySamples(), MAX_BYTES),
    run: (b) => accepts(() => decodeEntries(b)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'mesh.decodeDigest',
    families: ['gossip'],
    arbitrary: hostileBytes([new TopologyDigest(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])).encode()], 128),
    run: (b) => accepts(() => decodeDigest(b)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'ipam.decodeIpamMessage',
    families: ['gossip'],
    arbitrary: hostileBytes([encodeIpamMessage({ type: 'donate-request', subnet: null }), encodeIpamMessage({ type: 'donate-none', subnet: parseCidr('10.32.1.0/24') })], 64),
    run: (b) => accepts(() => decodeIpamMessage(b)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'ipam.decodeRing',
    families: ['gossip'],
    arbitrary: hostileBytes(ringSamples(), MAX_BYTES),
    run: (b) => accepts(() => decodeRing(b)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'dns.decodeRecords',
    families: ['gossip'],
    arbitrary: hostileBytes(recordSamples(), MAX_BYTES),
    run: (b) => accepts(() => decodeRecords(b)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'dataplane.decodeDataplaneGossip',
    families: ['gossip'],
    arbitrary: hostileBytes(dataplaneSamples(), MAX_BYTES),
    run: (b) => accepts(() => decodeDataplaneGossip(b)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'relay.decodeRelayPacket',
    families: ['relay'],
    arbitrary: fc.tuple(hostileBytes(relaySamples(), MAX_BYTES), fc.boolean()),
    run: ([b, withKey]) => accepts(() => decodeRelayPacket(b, withKey ? RELAY_KEY : null)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'relay.decodeHeader',
    families: ['relay'],
    arbitrary: hostileBytes(relaySamples(), 128),
    run: (b) => accepts(() => decodeHeader(b)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'relay.decodeBatchBody',
    families: ['relay'],
    arbitrary: fc.tuple(hostileBytes([encodeBatchBody([tapFrame(), tapFrame()]), encodeBatchBody([Buffer.alloc(60)])], MAX_BYTES), fc.constantFrom(0xffff, 1500, 64)),
    run: ([b, max]) => accepts(() => decodeBatchBody(b, max)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'relay.openPacket',
    families: ['relay'],
    arbitrary: fc.tuple(hostileBuffer(relaySamples(), MAX_BYTES), fc.nat({ max: MAX_BYTES + 16 })),
    run: ([b, length]) => (openPacket(RELAY_KEY, b, Math.min(length, b.length)) === null ? 'rejected' : 'accepted'),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'relay.vnetHeaderOk',
    families: ['virtio-net'],
    arbitrary: fc.tuple(hostileBytes(vnetSamples(), 256), fc.nat({ max: 8 })),
    run: ([b, start]) => {
      const at = Math.min(start, b.length);
      const ok = vnetHeaderOk(b, at, b.length - at);
      if (typeof ok !== 'boolean') throw new Error(`vnetHeaderOk answered ${String(ok)}`);
      return ok ? 'accepted' : 'rejected';
    },
    isRejection: () => false,
  }),
  target({
    name: 'os.netlink.decodeMessages',
    families: ['netlink'],
    arbitrary: hostileBuffer([encodeSetVxlanLocalBypass(7, true, 99), encodeGetLink(3, 1), Buffer.concat([encodeGetLink(3, 1), encodeSetVxlanLocalBypass(2, false, 5)])], 512),
    run: (b) => accepts(() => decodeMessages(b)),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'os.netlink.decodeAttrs',
    families: ['netlink'],
    arbitrary: hostileBuffer([encodeSetVxlanLocalBypass(7, true, 99).subarray(32)], 512),
    run: (b) => accepts(() => decodeAttrs(b)),
    isRejection: isLoomRejection,
  }),
];

// ----- DNS: the server's answer to any message, and resolv.conf ----------------------------------

let dnsServer: DnsServer | null = null;
function dnsServerForFuzzing(): DnsServer {
  if (dnsServer) return dnsServer;
  const { store } = new FakeDnsMesh(1).peer(0);
  // No upstream: a name we do not own gets SERVFAIL at once, without a socket.
  dnsServer = new DnsServer({ store }, { resolvConfPath: '/nonexistent/loom-fuzz/resolv.conf' });
  dnsServer.add('web', '10.32.0.1', 'c1');
  dnsServer.add('web.loom.local', '10.32.0.2', 'c2');
  dnsServer.add('db', '10.32.0.3', 'c3');
  return dnsServer;
}

const dnsTargets: FuzzTarget[] = [
  target({
    name: 'dns.DnsServer.answer',
    families: ['dns'],
    arbitrary: fc.tuple(hostileBuffer(dnsQuerySamples(), 1024), fc.boolean()),
    run: async ([raw, overTcp]) => {
      const reply = await dnsServerForFuzzing().answer(raw, overTcp);
      if (reply !== null && !Buffer.isBuffer(reply)) throw new Error('answer is neither a Buffer nor null');
      if (reply !== null && reply.length > (overTcp ? 65535 : 4096)) throw new Error(`a ${reply.length}-byte reply`);
      if (reply !== null) {
        // Whatever we answer is a well-formed DNS message with the asker's ID.
        if (reply.length < 12 || reply.readUInt16BE(0) !== raw.readUInt16BE(0)) throw new Error('a reply without the query\'s ID');
        dnsPacket.decode(reply);
      }
      return reply === null || (reply[3]! & 0x0f) !== 0 ? 'rejected' : 'accepted';
    },
    isRejection: () => false, // answer never throws
    caseTimeoutMs: 2000,
  }),
  target({
    name: 'dns.parseResolvConf',
    families: ['dns'],
    arbitrary: hostileText(['nameserver 10.0.0.1\nsearch a b\n', '# c\nnameserver ::1\nnameserver 8.8.8.8 # x\noptions ndots:5\n'], 1024),
    run: (text) => {
      const servers = parseResolvConf(text);
      if (!Array.isArray(servers) || servers.some((s) => typeof s !== 'string')) throw new Error('parseResolvConf answered a non-list');
      return 'accepted';
    },
    isRejection: isLoomRejection,
  }),
];

// ----- HTTP API bodies: every route of every table -----------------------------------------------

interface ApiRoute {
  readonly id: string;
  readonly schema: z.ZodType;
  readonly keys: readonly string[];
}

/** The field names of an object schema (through pipes and transforms); empty for other schemas. */
function objectKeys(schema: z.ZodType): string[] {
  if (schema instanceof z.ZodObject) return Object.keys(schema.shape);
  const def = (schema as unknown as { def?: { type?: string; in?: z.ZodType; innerType?: z.ZodType } }).def;
  if (def?.type === 'pipe' && def.in) return objectKeys(def.in);
  if (def?.innerType) return objectKeys(def.innerType);
  return [];
}

/** Every route with a request schema, from API_ROUTE_TABLES: a new route is fuzzed without a change here. */
export function apiRoutes(): ApiRoute[] {
  const out: ApiRoute[] = [];
  for (const [table, routes] of Object.entries(API_ROUTE_TABLES)) {
    for (const [name, route] of Object.entries(routes as Record<string, RouteContract>)) {
      if (route.request) out.push({ id: `${table}.${name}`, schema: route.request, keys: objectKeys(route.request) });
    }
  }
  return out;
}

const API_ROUTES = apiRoutes();

const apiTargets: FuzzTarget[] = [
  target({
    name: 'api.requestBodies',
    families: ['http-api'],
    routes: API_ROUTES.map((r) => r.id),
    arbitrary: fc.constantFrom(...API_ROUTES).chain((route) =>
      fc.tuple(
        fc.constant(route),
        fc.oneof(
          { weight: 4, arbitrary: objectWithKeys(route.keys) },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
          { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
        ),
      ),
    ),
    run: ([route, body]) => accepts(() => parseWith(route.schema, body, route.id)),
    isRejection: isLoomRejection,
  }),
];

// ----- CNI: stdin, environment, CNI_ARGS, and the whole plugin -----------------------------------

const CNI_CONFS = [
  { cniVersion: '1.0.0', name: 'loom', type: 'loom-cni' },
  { cniVersion: '0.4.0', name: 'loom', type: 'loom-cni', api: '127.0.0.1:6784', ipam: { type: 'host-local', subnet: '10.32.0.0/24' } },
  { cniVersion: '1.1.0', name: 'loom', type: 'loom-cni', prevResult: { cniVersion: '1.1.0', ips: [{ address: '10.32.0.5/12' }], interfaces: [{ name: 'eth0' }] }, validAttachments: [{ containerID: 'abc', ifname: 'eth0' }] },
];
const CNI_TEXTS = CNI_CONFS.map((c) => JSON.stringify(c));
const CNI_ENV_KEYS = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH', 'CNI_ARGS'];
const VALID_ENV = CNI_ENV;

const cniEnvArb: fc.Arbitrary<Record<string, string>> = fc
  .tuple(
    fc.constantFrom(...CNI_COMMANDS, 'add', 'NOPE', ''),
    fc.array(fc.tuple(fc.constantFrom(...CNI_ENV_KEYS), fc.oneof(fc.constantFrom(...PLAUSIBLE_STRINGS), hostileText(['IgnoreUnknown=1;K8S_POD_NAME=web', '/opt/cni/bin:/usr/lib/cni'], 64))), { maxLength: 4 }),
    fc.array(fc.constantFrom(...CNI_ENV_KEYS), { maxLength: 2 }),
  )
  .map(([command, changes, removed]) => {
    const env: Record<string, string> = { ...VALID_ENV, CNI_COMMAND: command };
    for (const [k, v] of changes) env[k] = v;
    for (const k of removed) delete env[k];
    return env;
  });

const cniStdinArb: fc.Arbitrary<string> = fc.oneof(
  hostileText(CNI_TEXTS, 1024),
  fc.tuple(fc.constantFrom(...CNI_CONFS), objectWithKeys(['cniVersion', 'name', 'type', 'api', 'ipam', 'dns', 'prevResult', 'runtimeConfig', 'args', 'validAttachments'])).map(([c, over]) => JSON.stringify({ ...c, ...over })),
);

const ATTACHMENT = CNI_ATTACHMENT;

/** A router answering every CNI route with a valid body; a request off the contract is a bug of the plugin. */
const fakeCniRouter: RouterTransport = {
  async call(method, path, body) {
    const route = Object.values(CNI_ROUTES).find((r) => r.path === path && r.method === method);
    if (!route) throw new Error(`plugin called ${method} ${path}, which is no CNI route`);
    if ('request' in route && !route.request.safeParse(body).success) throw new Error(`plugin sent ${path} a body off the contract: ${JSON.stringify(body)}`);
    switch (path) {
      case CNI_ROUTES.del.path:
        return { released: true };
      case CNI_ROUTES.gc.path:
        return { released: [] };
      case CNI_ROUTES.status.path:
        return { ready: true };
      default:
        return ATTACHMENT;
    }
  },
};

const cniTargets: FuzzTarget[] = [
  target({
    name: 'cni.decodeStdin+parseNetConf',
    families: ['cni'],
    arbitrary: fc.tuple(cniStdinArb, fc.constantFrom('ADD' as const, 'DEL' as const, 'CHECK' as const, 'GC' as const, 'STATUS' as const)),
    run: ([text, command]) => accepts(() => parseNetConf(decodeStdin(text), command)),
    isRejection: (err) => err instanceof CniError,
  }),
  target({
    name: 'cni.parseEnv',
    families: ['cni'],
    arbitrary: cniEnvArb,
    run: (env) => accepts(() => parseEnv(env)),
    isRejection: (err) => err instanceof CniError,
  }),
  target({
    name: 'cni.parseCniArgs',
    families: ['cni'],
    arbitrary: hostileText(['IgnoreUnknown=1;K8S_POD_NAME=web;K8S_POD_NAMESPACE=default', 'A=B', ';;=;'], 256),
    run: (text) => accepts(() => parseCniArgs(text)),
    isRejection: (err) => err instanceof CniError,
  }),
  target({
    name: 'cni.runPlugin',
    families: ['cni'],
    arbitrary: fc.tuple(cniEnvArb, cniStdinArb),
    run: async ([env, stdin]) => {
      const seen: { bug: Error | null } = { bug: null };
      const out = await runPlugin({
        env,
        stdin,
        router: () => ({
          call: (method, path, body) =>
            fakeCniRouter.call(method, path, body).catch((err: unknown) => {
              seen.bug = err instanceof Error ? err : new Error(String(err));
              throw err;
            }),
        }),
        delegator: () => ({ run: () => Promise.reject(new CniError(7, 'no delegated IPAM in the fuzzer')) }),
      });
      if (seen.bug) throw seen.bug;
      if (typeof out.stdout !== 'string' || !Number.isInteger(out.exitCode)) throw new Error(`runPlugin answered ${JSON.stringify(out)}`);
      if (out.exitCode === 0) return 'accepted';
      const error = JSON.parse(out.stdout) as { code?: unknown; msg?: unknown; cniVersion?: unknown };
      if (typeof error.code !== 'number' || typeof error.msg !== 'string' || error.msg === '' || typeof error.cniVersion !== 'string') throw new Error(`exit ${out.exitCode} without a spec error object: ${out.stdout}`);
      return 'rejected';
    },
    isRejection: () => false, // runPlugin never throws
  }),
];

// ----- Docker: the driver protocol and the engine's answers --------------------------------------

const DOCKER_RANGE = '10.32.0.0/12';

/** The driver paths DockerPlugin serves (test/unit/fuzz checks this against its switch). */
export const DOCKER_PLUGIN_PATHS = [
  '/Plugin.Activate',
  '/NetworkDriver.GetCapabilities',
  '/NetworkDriver.CreateNetwork',
  '/NetworkDriver.DeleteNetwork',
  '/NetworkDriver.CreateEndpoint',
  '/NetworkDriver.EndpointOperInfo',
  '/NetworkDriver.DeleteEndpoint',
  '/NetworkDriver.Join',
  '/NetworkDriver.Leave',
  '/NetworkDriver.ProgramExternalConnectivity',
  '/NetworkDriver.RevokeExternalConnectivity',
  '/NetworkDriver.DiscoverNew',
  '/NetworkDriver.DiscoverDelete',
  '/NetworkDriver.AllocateNetwork',
  '/NetworkDriver.FreeNetwork',
  '/IpamDriver.GetCapabilities',
  '/IpamDriver.GetDefaultAddressSpaces',
  '/IpamDriver.RequestPool',
  '/IpamDriver.ReleasePool',
  '/IpamDriver.RequestAddress',
  '/IpamDriver.ReleaseAddress',
];

const DOCKER_KEYS = ['NetworkID', 'EndpointID', 'SandboxKey', 'Options', 'IPv4Data', 'IPv6Data', 'Interface', 'AddressSpace', 'Pool', 'SubPool', 'PoolID', 'Address', 'V6', 'MacAddress'];
const NET_ID = 'a'.repeat(64);
const EP_ID = 'e'.repeat(64);

/** IPAM that hands out the next address of the asked subnet (as test/unit/docker does). */
function fakeAddresses(): ContainerAddresses {
  let next = 2;
  return {
    covers: () => true,
    async assign(_id, spec) {
      if (spec.kind === 'static') return spec.cidr;
      if (next > 200) throw new LoomError('ERR_EXHAUSTED', 'fuzz IPAM is full');
      return parseCoreCidr(`10.32.0.${next++}/12`);
    },
    release: async () => 1,
  };
}

const dockerCallArb = fc.tuple(
  fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...DOCKER_PLUGIN_PATHS) }, { weight: 1, arbitrary: fc.string({ maxLength: 30 }) }, { weight: 1, arbitrary: fc.constantFrom('/', '', '/NetworkDriver.', '/networkdriver.join') }),
  fc.oneof(
    { weight: 4, arbitrary: objectWithKeys(DOCKER_KEYS).map((o) => ({ NetworkID: NET_ID, EndpointID: EP_ID, ...o })) },
    { weight: 2, arbitrary: fc.constantFrom<unknown>({ NetworkID: NET_ID, IPv4Data: [{ Pool: '10.32.1.0/24', Gateway: '10.32.1.1/24' }] }, { NetworkID: NET_ID, EndpointID: EP_ID, Interface: { Address: '10.32.1.5/24' } }, { NetworkID: NET_ID, EndpointID: EP_ID, SandboxKey: '/var/run/docker/netns/x' }, { Pool: '10.32.1.0/24' }, { PoolID: 'x', Address: '10.32.1.9' }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  ),
);

const dockerTargets: FuzzTarget[] = [
  target({
    name: 'docker.DockerPlugin.handle',
    families: ['docker'],
    routes: DOCKER_PLUGIN_PATHS,
    // A short session on a fresh plugin, so a Join can meet the endpoint a CreateEndpoint made.
    arbitrary: fc.array(dockerCallArb, { minLength: 1, maxLength: 5 }),
    run: async (calls) => {
      const plugin = new DockerPlugin(
        {
          addresses: fakeAddresses(),
          links: { create: async (endpointId) => ({ hostVeth: `vld${endpointId.slice(0, 11)}`, containerVeth: `vld${endpointId.slice(0, 11)}c` }), remove: async () => undefined },
          store: memoryStateStore(),
          logger: silentLogger,
          now: () => 1_000_000,
          onEndpointsChanged: () => undefined,
          onEndpointGone: () => undefined,
        },
        { range: DOCKER_RANGE, defaultSubnet: DOCKER_RANGE },
      );
      let verdict: Verdict = 'accepted';
      for (const [path, body] of calls) {
        try {
          const answer = await plugin.handle(path, body);
          if (typeof answer !== 'object' || answer === null) throw new Error(`${path} answered ${String(answer)}`);
        } catch (err) {
          if (!isLoomError(err) || err.message === '') throw err;
          verdict = 'rejected';
        }
      }
      return verdict;
    },
    isRejection: isLoomRejection,
  }),
  target({
    name: 'docker.parseEvent',
    families: ['docker'],
    arbitrary: hostileText(['{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"web"}}}', '{"Type":"network","Action":"connect","Actor":{"ID":"n1","Attributes":{"container":"abc"}}}'], 512),
    run: (line) => (parseEvent(line) === null ? 'rejected' : 'accepted'),
    isRejection: isLoomRejection,
  }),
  target({
    name: 'docker.parseInspect',
    families: ['docker'],
    arbitrary: fc.oneof(
      fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<unknown>,
      objectWithKeys(['Id', 'Name', 'State', 'NetworkSettings', 'ResolvConfPath', 'HostConfig']),
      hostileText(['{"Id":"abc","Name":"/web","State":{"Running":true,"Pid":42},"NetworkSettings":{"Networks":{"loom":{"NetworkID":"n","EndpointID":"e","IPAddress":"10.32.0.2"}}},"HostConfig":{"Dns":["1.1.1.1"]}}'], 512).map((t) => {
        try {
          return JSON.parse(t) as unknown;
        } catch {
          return t;
        }
      }),
    ),
    run: (value) => accepts(() => parseInspect(value)),
    isRejection: isLoomRejection,
  }),
];

// ----- CLI arguments -----------------------------------------------------------------------------

/**
 * Commands the CLI fuzzer leaves out: they act on this host on their own (start a daemon, write
 * CNI files under /opt and /etc, run a demo). Everything else only talks to the API.
 */
const LOCAL_COMMANDS = new Set(['launch', 'cni', 'demo']);

interface SandboxRecord {
  attempts: string[];
}

let sandbox: SandboxRecord | null = null;

/**
 * Makes this thread's HTTP client fail at once with ECONNREFUSED (no socket is opened) and any
 * child process start fail and be recorded, for the CLI target. Node's builtin ESM exports are
 * resynchronised so the CLI's `import { request } from 'node:http'` sees the trap too. Kept for
 * the life of the thread: the CLI target runs in its own worker (or in the fuzz unit test file).
 */
function installCliSandbox(): SandboxRecord {
  if (sandbox) return sandbox;
  const record: SandboxRecord = { attempts: [] };
  const refuse = (): http.ClientRequest => {
    const req = new EventEmitter() as EventEmitter & { end(): void; write(): boolean; destroy(err?: Error): void; setTimeout(): void };
    req.write = () => true;
    req.setTimeout = () => undefined;
    req.destroy = (err?: Error) => void setImmediate(() => req.emit('error', err ?? new Error('destroyed')));
    req.end = () => {
      setImmediate(() => req.emit('error', Object.assign(new Error('connect ECONNREFUSED (fuzz sandbox)'), { code: 'ECONNREFUSED' })));
    };
    return req as unknown as http.ClientRequest;
  };
  http.request = refuse;
  http.get = refuse;
  const forbid = (name: string) =>
    ((...args: unknown[]) => {
      record.attempts.push(`${name} ${String(args[0])}`);
      throw Object.assign(new Error(`${name} is not allowed in the CLI fuzzer`), { code: 'EPERM' });
    }) as never;
  for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const) childProcess[name] = forbid(name);
  syncBuiltinESMExports();
  sandbox = record;
  return record;
}

function fuzzCliContext(): CliContext & { stdout: string; stderr: string } {
  const ctx = {
    stdout: '',
    stderr: '',
    out(t: string) {
      if (ctx.stdout.length < 65536) ctx.stdout += t;
    },
    err(t: string) {
      if (ctx.stderr.length < 65536) ctx.stderr += t;
    },
    env: { LOOM_HTTP_ADDR: '127.0.0.1:6784' } as NodeJS.ProcessEnv,
    node: ['/nonexistent/node'],
    entry: '/nonexistent/loom-entry.js',
    loadRouterFactory: async (): Promise<never> => {
      throw new LoomError('ERR_INTERNAL', 'no router in the fuzzer');
    },
  };
  return ctx;
}

/** The CLI's own words: command names and every option flag, read from the program itself. */
function cliVocabulary(): { commands: string[]; flags: string[] } {
  const program = buildProgram(fuzzCliContext());
  const commands = program.commands.map((c) => c.name()).filter((n) => !LOCAL_COMMANDS.has(n));
  const flags = new Set<string>(['--help', '-h', '-V', '--version', '--', '-', '--no-such-option']);
  for (const c of program.commands) {
    if (LOCAL_COMMANDS.has(c.name())) continue;
    for (const o of c.options) {
      if (o.long && !o.long.startsWith('--http-addr')) flags.add(o.long);
      if (o.short) flags.add(o.short);
    }
  }
  return { commands, flags: [...flags] };
}

const CLI_WORDS = cliVocabulary();

/** A token the CLI fuzzer never sends: a local command, or another API address than the sandbox's. */
function allowedToken(token: string): boolean {
  return !LOCAL_COMMANDS.has(token) && !token.startsWith('--http');
}

const cliTokenArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...CLI_WORDS.flags) },
  { weight: 3, arbitrary: fc.constantFrom(...PLAUSIBLE_STRINGS) },
  { weight: 1, arbitrary: fc.constantFrom(...CLI_WORDS.commands) },
  { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 24, unit: 'binary' }) },
);

const cliTargets: FuzzTarget[] = [
  target({
    name: 'cli.runCli',
    families: ['cli'],
    arbitrary: fc
      .tuple(fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...CLI_WORDS.commands) }, { weight: 1, arbitrary: cliTokenArb }), fc.array(cliTokenArb, { maxLength: 6 }))
      .map(([first, rest]) => [first, ...rest].filter(allowedToken)),
    run: async (argv) => {
      const record = installCliSandbox();
      const ctx = fuzzCliContext();
      const code = await runCli(argv, ctx);
      if (record.attempts.length > 0) throw new Error(`loom ${JSON.stringify(argv)} tried to start a process: ${record.attempts.splice(0).join('; ')}`);
      if (code !== 0 && code !== 1 && code !== 2) throw new Error(`exit code ${String(code)}`);
      if (/\n\s+at .+\(.+:\d+:\d+\)/.test(ctx.stderr + ctx.stdout)) throw new Error(`a stack trace was printed: ${ctx.stderr.slice(0, 500)}`);
      if (code === 1 && !/^loom: ERR_[A-Z_]+: \S/m.test(ctx.stderr)) throw new Error(`exit 1 without a reason: ${JSON.stringify(ctx.stderr.slice(0, 300))}`);
      if (code === 1 && /ERR_INTERNAL/.test(ctx.stderr)) throw new Error(`an internal error: ${ctx.stderr.slice(0, 300)}`);
      if (code === 2 && ctx.stderr.trim() === '') throw new Error('a usage error without a word on stderr');
      return code === 0 ? 'accepted' : 'rejected';
    },
    isRejection: () => false, // runCli never throws
    caseTimeoutMs: 3000,
  }),
];

/** `loom launch`'s flags, through the real commander command and option parser, with the daemon start replaced. */
function launchVocabulary(): string[] {
  const launch = buildProgram(fuzzCliContext()).commands.find((c) => c.name() === 'launch');
  if (!launch) throw new Error('the CLI has no launch command');
  return launch.options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined));
}

const LAUNCH_FLAGS = launchVocabulary();
const LAUNCH_VALUES = ['6783', '0', '65536', 'on', 'off', 'auto', 'consensus', 'consensus=3', 'seed=02:00:00:00:00:01', 'observer', '1400', '68', '9001', 'unix:///var/run/docker.sock', 'tcp://host:2375', 'http://kube:6443', 'loom.local', 'debug'];

cliTargets.push(
  target({
    name: 'cli.launchOptions',
    families: ['cli'],
    arbitrary: fc.array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...LAUNCH_FLAGS) }, { weight: 2, arbitrary: fc.constantFrom(...LAUNCH_VALUES) }, { weight: 2, arbitrary: fc.constantFrom(...PLAUSIBLE_STRINGS) }, { weight: 1, arbitrary: fc.string({ maxLength: 24 }) }), { maxLength: 8 }),
    run: async (args) => {
      const ctx = fuzzCliContext();
      const program = buildProgram(ctx);
      const launch = program.commands.find((c) => c.name() === 'launch')!;
      // What launch's action does before it starts anything: parse its options into a LaunchConfig.
      launch.action((peers: string[], opts: RawLaunchOptions) => {
        parseLaunchOptions(opts, peers, ctx.env, 'fuzz-host');
      });
      try {
        await program.parseAsync(['launch', ...args], { from: 'user' });
        return 'accepted';
      } catch (err) {
        if (err instanceof CommanderError && err.message !== '') return 'rejected';
        throw err;
      }
    },
    isRejection: isLoomRejection,
  }),
);

export const FUZZ_TARGETS: readonly FuzzTarget[] = [...byteTargets, ...dnsTargets, ...apiTargets, ...cniTargets, ...dockerTargets, ...cliTargets];

export function targetNamed(name: string): FuzzTarget | undefined {
  return FUZZ_TARGETS.find((t) => t.name === name);
}
