// The live page's model: what to draw, computed from one /report snapshot (and the previous one,
// for rates). Pure functions, no DOM: the page (app.js) draws the result, and the unit tests
// (test/unit/api/ui-model.test.ts) run the same code under Node.

/** @param {unknown} v */
const arr = (v) => (Array.isArray(v) ? v : []);
/** @param {unknown} v */
const obj = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? /** @type {Record<string, any>} */ (v) : {});
/** @param {unknown} v */
const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
/** @param {unknown} v */
const str = (v) => (typeof v === 'string' ? v : '');

/** "a:b" key of an unordered pair. */
export function pairKey(a, b) {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** The host part of "ip:port". */
function hostOf(address) {
  const s = str(address);
  const i = s.lastIndexOf(':');
  return i > 0 ? s.slice(0, i) : s;
}

/**
 * The model of one snapshot.
 * @param {any} report the /report JSON
 * @param {{ report: any, at: number } | null} previous the snapshot before, for rates
 * @param {number} at when this one arrived (ms)
 */
export function buildModel(report, previous, at) {
  const r = obj(report);
  const router = obj(r.router);
  const self = str(router.name);
  const dataplane = obj(r.dataplane);
  const relay = obj(dataplane.relay);
  const routes = obj(router.routes);
  const reachable = new Set([self, ...arr(routes.unicast).map((u) => str(obj(u).destination))]);

  // Peers: the whole topology, as gossiped; each one's underlay address from whoever connects to it.
  const peers = new Map();
  for (const p of arr(router.peers).map(obj)) {
    const name = str(p.name);
    if (name === '') continue;
    peers.set(name, { name, nickname: str(p.nickname), address: '', self: name === self, reachable: reachable.has(name), containers: [], macs: [], macCount: 0 });
  }
  for (const p of arr(router.peers).map(obj)) {
    for (const c of arr(p.connections).map(obj)) {
      const target = peers.get(str(c.name));
      if (target && target.address === '' && str(c.address) !== '') target.address = hostOf(c.address);
    }
  }
  for (const c of arr(router.connections).map(obj)) {
    const target = peers.get(str(obj(c.peer).name));
    if (target && target.address === '') target.address = hostOf(c.address);
  }

  // Links: each established connection, once per pair; both ends saying so = established.
  const links = new Map();
  for (const p of arr(router.peers).map(obj)) {
    for (const c of arr(p.connections).map(obj)) {
      const a = str(p.name);
      const b = str(c.name);
      if (!peers.has(a) || !peers.has(b) || a === b) continue;
      const key = pairKey(a, b);
      const link = links.get(key) ?? { key, a: a < b ? a : b, b: a < b ? b : a, ends: 0, established: false, local: false, path: 'mesh', via: '', encrypted: false, pmtu: null, rttMs: null, reason: '', txBps: null, rxBps: null };
      if (c.established === true) link.ends++;
      links.set(key, link);
    }
  }
  for (const link of links.values()) link.established = link.ends >= 2;

  // This host's links: the data path, PMTU, RTT and byte rates from the data plane's report.
  const neighbours = new Map(arr(relay.neighbours).map(obj).map((n) => [str(n.peer), n]));
  const counters = new Map(arr(obj(relay.stats).neighbours).map(obj).map((n) => [str(n.peer), n]));
  const before = previous ? new Map(arr(obj(obj(obj(obj(previous.report).dataplane).relay).stats).neighbours).map(obj).map((n) => [str(n.peer), n])) : new Map();
  const seconds = previous ? (at - previous.at) / 1000 : 0;
  const paths = [];
  for (const p of arr(dataplane.peers).map(obj)) {
    const peer = str(p.peer);
    const n = obj(neighbours.get(peer));
    const now = obj(counters.get(peer));
    const then = before.get(peer);
    const rate = (field) => {
      if (!then || seconds <= 0) return null;
      const d = (num(now[field]) ?? 0) - (num(obj(then)[field]) ?? 0);
      return d >= 0 ? (d * 8) / seconds : null;
    };
    const path = {
      peer,
      path: str(p.path) === 'sleeve' ? 'relay' : str(p.path) || 'unknown',
      via: str(p.via),
      encrypted: p.encrypted === true,
      mtu: num(p.mtu),
      pmtu: num(p.pmtu) ?? num(n.pmtu),
      rttMs: num(n.rttMs),
      reason: str(p.reason),
      macs: num(p.macs) ?? 0,
      txBps: rate('bytesSent'),
      rxBps: rate('bytesReceived'),
    };
    paths.push(path);
    const key = pairKey(self, peer);
    const link = links.get(key) ?? { key, a: self < peer ? self : peer, b: self < peer ? peer : self, ends: 0, established: false, local: true, path: 'mesh', via: '', encrypted: false, pmtu: null, rttMs: null, reason: '', txBps: null, rxBps: null };
    Object.assign(link, { local: true, path: path.path, via: path.via, encrypted: path.encrypted, pmtu: path.pmtu, rttMs: path.rttMs, reason: path.reason, txBps: path.txBps, rxBps: path.rxBps });
    links.set(key, link);
  }

  // Containers: ours in full; other hosts' by name and address (DNS) and by MAC (data-plane gossip).
  const own = peers.get(self);
  for (const c of arr(obj(r.containers).containers).map(obj)) {
    own?.containers.push({ name: str(c.name), addresses: arr(c.cidrs).map(str), mac: str(c.mac), alive: c.alive !== false });
  }
  const dns = obj(r.dns);
  const records = arr(dns.records).map(obj).map((d) => ({ name: str(d.name), address: str(d.address), origin: str(d.origin), originNickname: str(d.originNickname) }));
  for (const d of records) {
    const host = peers.get(d.origin);
    if (!host || host.self) continue;
    const known = host.containers.find((c) => c.name === d.name);
    if (known) known.addresses.push(d.address);
    else host.containers.push({ name: d.name, addresses: [d.address], mac: '', alive: true });
  }
  for (const m of arr(dataplane.remoteMacs).map(obj)) {
    const host = peers.get(str(m.peer));
    if (!host) continue;
    host.macs = arr(m.macs).map(str);
    host.macCount = num(m.count) ?? host.macs.length;
  }

  // IPAM: who owns how much of the range, how much is used, and owners we cannot reach.
  const ipam = obj(r.ipam);
  const rangeSize = num(ipam.rangeSize) ?? 0;
  const owners = arr(ipam.peers).map(obj).map((p) => ({
    name: str(p.name),
    nickname: str(p.nickname) || (peers.get(str(p.name))?.nickname ?? ''),
    owned: num(p.owned) ?? 0,
    inUse: num(p.inUse) ?? 0,
    reachable: p.reachable !== false,
    share: rangeSize > 0 ? (num(p.owned) ?? 0) / rangeSize : 0,
  }));
  const unreachableOwners = arr(ipam.unreachableOwners).map((u) => (typeof u === 'string' ? u : str(obj(u).name))).filter((u) => u !== '');

  const events = arr(obj(r.events).recent).map(obj);
  return {
    self,
    selfNickname: str(router.nickname),
    version: str(r.version),
    encryption: router.encryption === true,
    peers: [...peers.values()].sort((x, y) => (x.self ? -1 : y.self ? 1 : (x.nickname || x.name).localeCompare(y.nickname || y.name))),
    links: [...links.values()].sort((x, y) => x.key.localeCompare(y.key)),
    paths,
    ipam: { state: str(ipam.state), range: str(ipam.range), rangeSize, owners, unreachableOwners, allocations: num(ipam.allocations) ?? 0 },
    dns: { domain: str(dns.domain), records },
    events,
  };
}

/** The class of a link's colour: fastdp, relay, relay-hop, unreachable, mesh (not ours: path unknown here), pending. */
export function linkClass(link) {
  if (!link.established && !link.local) return 'pending';
  if (!link.local) return 'mesh';
  if (link.path === 'relay') return link.via !== '' ? 'relay-hop' : 'relay';
  return link.path;
}

/** "fastdp", "relay", "relay via h2", "unreachable", "mesh". */
export function describeLink(link, nicknameOf) {
  if (!link.local) return link.established ? 'mesh connection' : 'connecting';
  if (link.path === 'relay') return link.via !== '' ? `relay via ${nicknameOf(link.via)}` : 'relay';
  return link.path;
}

/** Bits per second, short. */
export function formatRate(bps) {
  if (bps === null || bps === undefined) return '–';
  if (bps < 1000) return `${Math.round(bps)} bit/s`;
  if (bps < 1e6) return `${(bps / 1e3).toFixed(1)} kbit/s`;
  if (bps < 1e9) return `${(bps / 1e6).toFixed(1)} Mbit/s`;
  return `${(bps / 1e9).toFixed(2)} Gbit/s`;
}

export function formatRtt(ms) {
  return ms === null || ms === undefined ? '–' : ms < 10 ? `${ms.toFixed(2)} ms` : `${Math.round(ms)} ms`;
}

/** Positions on a circle, the first item at the top, in a `size` x `size` box. */
export function circleLayout(names, size) {
  const centre = size / 2;
  const radius = names.length <= 1 ? 0 : size * 0.34;
  const out = new Map();
  names.forEach((name, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, names.length);
    out.set(name, { x: centre + radius * Math.cos(angle), y: centre + radius * Math.sin(angle) });
  });
  return out;
}
