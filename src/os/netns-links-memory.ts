/**
 * An in-memory NetnsLinks for unit tests: namespaces of links, addresses and routes, and the list
 * of operations in the order they ran (`ops`, one readable line each), as RecordingRunner records
 * commands. Behaves as the kernel does where attach depends on it: names are unique per
 * namespace (EEXIST), deleting a veth end deletes its peer, a new namespace has `lo` (down), a
 * bridge port forwards at once (or after `forwardAfterPolls` looks).
 */
import { LoomError } from '../core/errors.js';
import { BR_STATE_FORWARDING, netnsPath, type LinkState, type NetnsLinkHandle, type NetnsLinks, type NetnsRef, type RouteSpec, type VethSpec } from './netns-links.js';
import type { LinkChange } from './rtnl-codec.js';

const HOST = 'host';

interface MemoryLink extends LinkState {
  peer?: { ns: string; name: string };
  arpNotify: boolean;
}

export interface MemoryNamespace {
  links: Map<string, MemoryLink>;
  addresses: Array<{ index: number; address: string; prefix: number }>;
  routes: Array<RouteSpec>;
}

function kernelError(what: string, name: string, errno: number): LoomError {
  return new LoomError('ERR_OS_COMMAND', `netlink: ${what}: ${name} (errno ${errno})`, { detail: { netlinkErrno: errno, errno } });
}

export class MemoryNetnsLinks implements NetnsLinks {
  readonly ops: string[] = [];
  readonly namespaces = new Map<string, MemoryNamespace>();
  /** Looks at a port before it reports forwarding. */
  forwardAfterPolls = 0;
  /** Throws ERR_OS_COMMAND for an operation whose recorded line this matches. */
  failOn: RegExp | null = null;
  private nextIndex = 10;
  /** Handles opened and not closed yet (a leak shows here). */
  handlesOpen = 0;
  readonly polls = new Map<string, number>();

  constructor(init: { bridge?: string } = {}) {
    this.link(HOST, { name: 'lo', mtu: 65536 });
    this.link(HOST, { name: init.bridge ?? 'loom', mtu: 1450, up: true });
  }

  /** The namespace's state (made on first use, with lo). */
  ns(ref: NetnsRef | null): MemoryNamespace {
    return this.space(ref === null ? HOST : netnsPath(ref));
  }

  /** Adds a link to namespace `key` ('host' or a netns path); returns it. */
  link(key: string, init: { name: string; mtu?: number; up?: boolean; mac?: string; master?: number }): MemoryLink {
    const ns = this.space(key);
    const index = init.name === 'lo' ? 1 : this.nextIndex++;
    const link: MemoryLink = { index, name: init.name, mac: init.mac ?? '', up: init.up ?? false, mtu: init.mtu ?? 1500, master: init.master ?? null, bridgePortState: null, arpNotify: false };
    ns.links.set(init.name, link);
    return link;
  }

  open(netns: NetnsRef | null): NetnsLinkHandle {
    this.handlesOpen++;
    const key = netns === null ? HOST : netnsPath(netns);
    this.space(key);
    return new MemoryHandle(this, key);
  }

  /** The namespace goes away (its last process died): its veth ends take their peers along, as in the kernel. */
  removeNamespace(ref: NetnsRef): void {
    const key = netnsPath(ref);
    const ns = this.namespaces.get(key);
    if (!ns) return;
    for (const link of ns.links.values()) if (link.peer) this.namespaces.get(link.peer.ns)?.links.delete(link.peer.name);
    this.namespaces.delete(key);
  }

  /** Called by the handle: records `line`, then fails it if `failOn` matches. */
  record(line: string): void {
    this.ops.push(line);
    if (this.failOn?.test(line)) throw new LoomError('ERR_OS_COMMAND', `netlink: ${line}: EIO (errno 5)`, { detail: { netlinkErrno: 5, errno: 5 } });
  }

  space(key: string): MemoryNamespace {
    let ns = this.namespaces.get(key);
    if (!ns) {
      ns = { links: new Map(), addresses: [], routes: [] };
      this.namespaces.set(key, ns);
      if (key !== HOST) this.link(key, { name: 'lo', mtu: 65536 });
    }
    return ns;
  }

}

class MemoryHandle implements NetnsLinkHandle {
  private closed = false;
  constructor(
    private readonly world: MemoryNetnsLinks,
    private readonly key: string,
  ) {}

  private get ns(): MemoryNamespace {
    if (this.closed) throw new LoomError('ERR_INTERNAL', 'memory netns handle used after close');
    return this.world.space(this.key);
  }

  private byIndex(index: number): MemoryLink {
    const link = [...this.ns.links.values()].find((l) => l.index === index);
    if (!link) throw kernelError(`link #${index}`, 'ENODEV', 19);
    return link;
  }

  link(name: string): LinkState | null {
    const link = this.ns.links.get(name);
    if (!link) return null;
    if (link.master !== null && link.bridgePortState !== BR_STATE_FORWARDING) {
      const polls = (this.world.polls.get(name) ?? 0) + 1;
      this.world.polls.set(name, polls);
      if (polls > this.world.forwardAfterPolls) link.bridgePortState = BR_STATE_FORWARDING;
    }
    return { ...link };
  }

  linkByIndex(index: number): LinkState | null {
    const link = [...this.ns.links.values()].find((l) => l.index === index);
    return link ? this.link(link.name) : null;
  }

  createVeth(spec: VethSpec): void {
    const peerKey = netnsPath(spec.peer.netns);
    this.world.record(`${this.key}: create veth ${spec.name} mtu ${spec.mtu} master #${spec.master} up, peer ${spec.peer.name} mtu ${spec.peer.mtu} address ${spec.peer.mac} in ${peerKey}`);
    if (this.ns.links.has(spec.name)) throw kernelError('create veth', 'EEXIST', 17);
    if (this.world.space(peerKey).links.has(spec.peer.name)) throw kernelError('create veth', 'EEXIST', 17);
    const host = this.world.link(this.key, { name: spec.name, mtu: spec.mtu, up: true, master: spec.master, mac: '02:00:00:00:00:ff' });
    host.bridgePortState = 0;
    const peer = this.world.link(peerKey, { name: spec.peer.name, mtu: spec.peer.mtu, mac: spec.peer.mac });
    host.peer = { ns: peerKey, name: peer.name };
    peer.peer = { ns: this.key, name: host.name };
  }

  setLink(link: number | string, change: LinkChange): void {
    const target = typeof link === 'number' ? this.byIndex(link) : this.ns.links.get(link);
    this.world.record(`${this.key}: set ${typeof link === 'number' ? (target?.name ?? `#${link}`) : link}${change.up === undefined ? '' : change.up ? ' up' : ' down'}${change.mac === undefined ? '' : ` address ${change.mac}`}`);
    if (!target) throw kernelError('set link', 'ENODEV', 19);
    if (change.up !== undefined) target.up = change.up;
    if (change.mac !== undefined) target.mac = change.mac;
  }

  setArpNotify(index: number): void {
    const link = this.byIndex(index);
    this.world.record(`${this.key}: arp_notify=1 on ${link.name}`);
    link.arpNotify = true;
  }

  addresses4(index: number): Array<{ address: string; prefix: number }> {
    return this.ns.addresses.filter((a) => a.index === index).map((a) => ({ address: a.address, prefix: a.prefix }));
  }

  addAddress4(index: number, address: string, prefix: number): boolean {
    const link = this.byIndex(index);
    this.world.record(`${this.key}: addr add ${address}/${prefix} dev ${link.name}`);
    if (this.ns.addresses.some((a) => a.index === index && a.address === address && a.prefix === prefix)) return false;
    this.ns.addresses.push({ index, address, prefix });
    return true;
  }

  addRoute4(route: RouteSpec, replace: boolean): boolean {
    const dev = this.byIndex(route.oif);
    this.world.record(`${this.key}: route ${replace ? 'replace' : 'add'} ${route.prefix === 0 ? 'default' : `${route.dst}/${route.prefix}`}${route.gateway === undefined ? '' : ` via ${route.gateway}`} dev ${dev.name}`);
    const at = this.ns.routes.findIndex((r) => r.dst === route.dst && r.prefix === route.prefix);
    if (at >= 0 && !replace) return false;
    if (at >= 0) this.ns.routes.splice(at, 1);
    this.ns.routes.push({ ...route });
    return true;
  }

  defaultRoutes4(): Array<{ oif: number | null; gateway: string | null }> {
    return this.ns.routes.filter((r) => r.prefix === 0).map((r) => ({ oif: r.oif, gateway: r.gateway ?? null }));
  }

  deleteLink(name: string): boolean {
    this.world.record(`${this.key}: delete ${name}`);
    const link = this.ns.links.get(name);
    if (!link) return false;
    for (const [key, l] of [[this.key, link] as const, ...(link.peer ? [[link.peer.ns, this.world.space(link.peer.ns).links.get(link.peer.name)] as const] : [])]) {
      if (!l) continue;
      const ns = this.world.space(key);
      ns.links.delete(l.name);
      ns.addresses = ns.addresses.filter((a) => a.index !== l.index);
      ns.routes = ns.routes.filter((r) => r.oif !== l.index);
    }
    return true;
  }

  close(): void {
    if (!this.closed) this.world.handlesOpen--;
    this.closed = true;
  }
}
