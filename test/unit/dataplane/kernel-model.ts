/**
 * A model of the kernel's bridge/vxlan/tap/FDB behaviour, enough to replay DataplaneOps without
 * root. It refuses what the kernel refuses (creating an existing link, enslaving to a missing
 * bridge, port flags or bridge entries on a device that is not a bridge port, deleting a missing
 * FDB entry), so a plan that only works by luck fails here too.
 */
import { fdbKey, type BridgeFdbEntry, type CurrentDataplane, type CurrentLink, type DataplaneOp, type FdbEntry } from '../../../src/dataplane/index.js';

/** The kernel's default gso_max_size (GSO_LEGACY_MAX_SIZE). */
const DEFAULT_GSO_MAX_SIZE = 65536;

export class KernelModel {
  links = new Map<string, CurrentLink>();
  fdb: FdbEntry[] = [];
  /** The bridge's static entries: MAC -> port (a MAC is on one port at most). */
  bridgeFdb = new Map<string, string>();
  vxlanName: string | null = null;

  snapshot(): CurrentDataplane {
    const links = new Map<string, CurrentLink>();
    for (const [k, v] of this.links) links.set(k, { ...v, vxlan: v.vxlan ? { ...v.vxlan } : null });
    return { links, fdb: this.fdb.map((e) => ({ ...e })), bridgeFdb: this.bridgeEntries() };
  }

  bridgeEntries(): BridgeFdbEntry[] {
    return [...this.bridgeFdb].map(([mac, dev]) => ({ mac, dev }));
  }

  /** What the relay does when it starts: a tap, down, not enslaved, default MTU and GSO size. */
  addTap(name: string): void {
    if (this.links.has(name)) throw new Error(`model: ${name} exists`);
    this.links.set(name, { name, kind: 'tun', mtu: 1500, up: false, master: null, vxlan: null, isolated: null, gsoMaxSize: DEFAULT_GSO_MAX_SIZE });
  }

  /** What the relay's exit does: the tap goes, and the bridge's entries on it. */
  removeTap(name: string): void {
    this.applyOne({ op: 'delete-link', name, reason: 'relay stopped' });
  }

  /** The links as `ip -j -d link show` prints them (iproute2 >= 6.5, which shows localbypass). */
  ipLinkJson(): string {
    const out = [{ ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, gso_max_size: 65536 }, ...[...this.links.values()].map((l, i) => {
      const data = l.vxlan
        ? { id: l.vxlan.vni, port: l.vxlan.port, ...(l.vxlan.localIp ? { local: l.vxlan.localIp } : {}), learning: l.vxlan.learning, localbypass: l.vxlan.localBypass }
        : l.kind === 'tun'
          ? { type: 'tap', pi: false, vnet_hdr: true }
          : { stp_state: 0 };
      const port = l.master ? { info_slave_kind: 'bridge', info_slave_data: { state: 'forwarding', learning: true, isolated: l.isolated ?? false } } : {};
      return {
        ifindex: i + 2,
        ifname: l.name,
        flags: l.up ? ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'] : ['BROADCAST', 'MULTICAST'],
        mtu: l.mtu,
        ...(l.address ? { address: l.address } : {}),
        ...(l.master ? { master: l.master } : {}),
        linkinfo: { info_kind: l.kind, info_data: data, ...port },
        gso_max_size: l.gsoMaxSize,
      };
    })];
    return JSON.stringify(out);
  }

  /** `bridge -j fdb show br B`: the bridge's own entries, its ports' addresses, the pins, the vxlan's own table. */
  bridgeFdbJson(bridge: string): string {
    const out: object[] = [{ mac: '33:33:00:00:00:01', ifname: bridge, flags: ['self'], state: 'permanent' }];
    for (const l of this.links.values()) {
      if (l.master !== bridge) continue;
      out.push({ mac: '0a:00:00:00:00:01', ifname: l.name, flags: [], master: bridge, state: 'permanent' });
      for (const [mac, dev] of this.bridgeFdb) if (dev === l.name) out.push({ mac: mac.toUpperCase(), ifname: dev, flags: ['sticky'], master: bridge, state: 'static' });
      if (l.name === this.vxlanName) out.push(...this.vxlanEntries(l.name));
    }
    return JSON.stringify(out);
  }

  /** `bridge -j fdb show dev X` of the vxlan device: its own table (with dst) and its address in the bridge. */
  vxlanFdbJson(dev: string): string {
    const link = this.need(dev);
    return JSON.stringify([...(link.master ? [{ mac: '0a:00:00:00:00:01', flags: [], master: link.master, state: 'permanent' }] : []), ...this.vxlanEntries(dev)]);
  }

  private vxlanEntries(dev: string): object[] {
    return this.fdb.map((e) => ({ mac: e.mac, ifname: dev, dst: e.dst, ...(e.port === null ? {} : { port: e.port }), flags: ['self'], state: 'permanent' }));
  }

  private need(name: string): CurrentLink {
    const link = this.links.get(name);
    if (!link) throw new Error(`model: no link ${name}`);
    return link;
  }

  private needPort(name: string): CurrentLink {
    const link = this.need(name);
    if (link.master === null) throw new Error(`model: ${name} is not a bridge port`);
    return link;
  }

  private forgetPort(name: string): void {
    for (const [mac, dev] of this.bridgeFdb) if (dev === name) this.bridgeFdb.delete(mac);
  }

  apply(ops: readonly DataplaneOp[]): void {
    for (const op of ops) this.applyOne(op);
  }

  private applyOne(op: DataplaneOp): void {
    switch (op.op) {
      case 'create-bridge':
      case 'create-vxlan':
        if (this.links.has(op.name)) throw new Error(`model: ${op.name} exists`);
        this.links.set(op.name, {
          name: op.name,
          kind: op.op === 'create-bridge' ? 'bridge' : 'vxlan',
          mtu: op.mtu,
          up: false,
          master: null,
          vxlan: op.op === 'create-vxlan' ? { vni: op.vni, port: op.port, localIp: op.localIp, learning: false, localBypass: true } : null,
          isolated: null,
          gsoMaxSize: DEFAULT_GSO_MAX_SIZE,
          // What the kernel gives a new link: a random address (here: one per link made).
          address: `0a:00:00:00:01:${(this.links.size + 1).toString(16).padStart(2, '0')}`,
        });
        if (op.op === 'create-vxlan') {
          this.vxlanName = op.name;
          this.fdb = [];
        }
        return;
      case 'delete-link': {
        const link = this.need(op.name);
        this.links.delete(op.name);
        this.forgetPort(op.name);
        for (const l of this.links.values()) {
          if (l.master !== op.name) continue;
          l.master = null;
          l.isolated = null;
        }
        if (link.kind === 'bridge') this.bridgeFdb.clear();
        if (this.vxlanName === op.name) this.fdb = [];
        return;
      }
      case 'set-mtu':
        this.need(op.name).mtu = op.mtu;
        return;
      case 'set-address':
        this.need(op.name).address = op.mac;
        return;
      case 'set-gso-max-size':
        this.need(op.name).gsoMaxSize = op.size;
        return;
      case 'set-master': {
        if (this.need(op.master).kind !== 'bridge') throw new Error('model: master is not a bridge');
        const link = this.need(op.name);
        if (link.master === op.master) return;
        // A new port: the old bridge forgets its entries on it; port flags start at their defaults.
        this.forgetPort(op.name);
        link.master = op.master;
        link.isolated = false;
        return;
      }
      case 'set-isolated':
        this.needPort(op.name).isolated = op.on;
        return;
      case 'set-up':
        this.need(op.name).up = true;
        return;
      case 'set-local-bypass': {
        const v = this.need(op.name).vxlan;
        if (!v) throw new Error('model: not vxlan');
        v.localBypass = op.enabled;
        return;
      }
      case 'fdb-append':
        this.needVxlan(op.dev);
        if (this.fdb.some((e) => fdbKey(e) === fdbKey(op.entry))) throw new Error('model: fdb entry exists');
        this.fdb.push({ ...op.entry });
        return;
      case 'fdb-replace': {
        this.needVxlan(op.dev);
        const i = this.fdb.findIndex((e) => e.mac === op.entry.mac);
        if (i >= 0) this.fdb[i] = { ...op.entry };
        else this.fdb.push({ ...op.entry });
        return;
      }
      case 'fdb-delete': {
        this.needVxlan(op.dev);
        const i = this.fdb.findIndex((e) => fdbKey(e) === fdbKey(op.entry));
        if (i < 0) throw new Error('model: no such fdb entry');
        this.fdb.splice(i, 1);
        return;
      }
      case 'bridge-fdb-replace':
        this.needPort(op.entry.dev);
        this.bridgeFdb.set(op.entry.mac, op.entry.dev);
        return;
      case 'bridge-fdb-delete':
        this.needPort(op.entry.dev);
        if (this.bridgeFdb.get(op.entry.mac) !== op.entry.dev) throw new Error('model: no such bridge fdb entry');
        this.bridgeFdb.delete(op.entry.mac);
        return;
      default: {
        const never: never = op;
        throw new Error(`model: unknown op ${JSON.stringify(never)}`);
      }
    }
  }

  private needVxlan(dev: string): void {
    if (this.need(dev).kind !== 'vxlan') throw new Error('model: fdb on a non-vxlan device');
  }
}
