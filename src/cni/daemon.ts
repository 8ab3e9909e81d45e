/**
 * The router's side of the CNI plugin (the `cni` subsystem, after `containers`): ADD plugs a
 * sandbox's namespace into the Loom bridge through the containers' attach path, with an address
 * from Loom IPAM (id `cni:<container>:<ifname>`) or the one a delegated IPAM chose, a DNS name
 * when the runtime gave K8S_POD_NAME, and its MAC published to the data plane (source `cni`).
 *
 * Contracts:
 * - Nothing half-made: every step of ADD is undone when a later one fails (veth, IPAM address,
 *   DNS record, record). The record is written `pending` first, so a router killed in the middle
 *   undoes the rest at its next start.
 * - DEL is idempotent; an unknown attachment still releases its IPAM id (a crash may have left it).
 * - `start` and GC release attachments whose namespace is gone (or replaced by another at the
 *   same path): a sandbox deleted while the router was down is cleaned up when it comes back.
 * - Calls run one at a time (one queue), so the records file never sees two writers.
 */
import { existsSync, statSync } from 'node:fs';
import type { Clock } from '../core/clock.js';
import { LoomError, toLoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Subsystem } from '../core/subsystem.js';
import { DEFAULT_ADDRESS_SPEC } from '../core/address-spec.js';
import { formatCidr, parseCidr } from '../core/net.js';
import { macFromSeed, parseIpv4Cidr } from '../dataplane/addresses.js';
import { netlinkLinks, type NetnsLinks } from '../os/netns-links.js';
import { attachNetwork } from '../containers/attach.js';
import type { ContainerAddresses, DnsHooks, LocalMacSink } from '../containers/daemon.js';
import { dnsIdOf, hostVethOf, ipamIdOf } from './ids.js';
import { CniStore, sameKey, type CniRecord } from './store.js';
import type { AddRequest, AttachmentKey, CheckRequest, CniAttachmentJson, DelRequest, GcRequest, StatusResponse } from './wire.js';

export const CNI_SUBSYSTEM = 'cni';

export interface CniComponents {
  clock: Clock;
  logger: Logger;
  /** The link door (attach, the default route, CHECK, DEL); default rtnetlink (tests: MemoryNetnsLinks). */
  netnsLinks?: NetnsLinks;
  macs?: LocalMacSink;
  dns?: DnsHooks;
  ipam?: ContainerAddresses;
  /** Whether Loom IPAM can allocate now (STATUS); absent = no IPAM. */
  ipamReady?: () => { ready: boolean; reason?: string };
  /** The host's Loom address and DNS domain, once DNS serves on it: gateway + resolver of the result. */
  resolver?: () => { nameserver: string; domain: string } | null;
}

export interface CniInit {
  stateDir: string;
  bridge: string;
  mtu: number;
}

export interface CniReport {
  attachments: number;
  pending: number;
}

export class CniSubsystem implements Subsystem {
  readonly name = CNI_SUBSYSTEM;
  private readonly c: CniComponents;
  private readonly links: NetnsLinks;
  private readonly store: CniStore;
  private readonly init: CniInit;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(components: CniComponents, init: CniInit) {
    this.c = components;
    this.links = components.netnsLinks ?? netlinkLinks;
    this.store = new CniStore(init.stateDir);
    this.init = init;
  }

  async start(): Promise<void> {
    await this.serial(() => this.collect((r) => r.state === 'pending' || !this.netnsAlive(r)));
    this.publishMacs();
    for (const r of this.store.load()) this.announce(r);
  }

  async stop(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  report(): CniReport {
    const all = this.store.load();
    return { attachments: all.length, pending: all.filter((r) => r.state === 'pending').length };
  }

  list(): CniAttachmentJson[] {
    return this.store.load().filter((r) => r.state === 'ready').map(toJson);
  }

  add(req: AddRequest): Promise<CniAttachmentJson> {
    return this.serial(() => this.addNow(req));
  }

  del(req: DelRequest): Promise<{ released: boolean }> {
    return this.serial(async () => {
      const record = this.store.load().find((r) => sameKey(r, req));
      if (!record) {
        await this.releaseAddress(ipamIdOf(req));
        return { released: false };
      }
      await this.undo(record);
      return { released: true };
    });
  }

  check(req: CheckRequest): Promise<CniAttachmentJson> {
    return this.serial(async () => {
      const record = this.store.load().find((r) => sameKey(r, req) && r.state === 'ready');
      if (!record || record.network !== req.network) throw new LoomError('ERR_NOT_FOUND', `no attachment of ${req.containerId.slice(0, 64)} ${req.ifname} on network ${req.network}`);
      if (record.netns !== req.netns || !this.netnsAlive(record)) throw new LoomError('ERR_NOT_FOUND', `the namespace of ${req.containerId.slice(0, 64)} is not ${req.netns.slice(0, 100)}`);
      const { address, prefix } = parseIpv4Cidr(record.cidr);
      const ns = this.links.open({ path: record.netns });
      try {
        const link = ns.link(record.ifname);
        if (link === null) throw new LoomError('ERR_CONFLICT', `${record.ifname} is missing in ${record.netns}`);
        if (!ns.addresses4(link.index).some((a) => a.address === address && a.prefix === prefix)) throw new LoomError('ERR_CONFLICT', `${record.ifname} in ${record.netns} lacks ${record.cidr}`);
      } finally {
        ns.close();
      }
      return toJson(record);
    });
  }

  /** Releases the attachments of `network` that `valid` does not list, and those whose namespace is gone. */
  gc(req: GcRequest): Promise<{ released: AttachmentKey[] }> {
    return this.serial(async () => {
      const released = await this.collect((r) => (r.network === req.network && !req.valid.some((v) => sameKey(v, r))) || !this.netnsAlive(r));
      return { released };
    });
  }

  status(): StatusResponse {
    if (!this.c.ipamReady) return { ready: false, reason: 'Loom IPAM is off on this router' };
    return this.c.ipamReady();
  }

  // ----- inside the queue --------------------------------------------------------------------

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async addNow(req: AddRequest): Promise<CniAttachmentJson> {
    const existing = this.store.load().find((r) => sameKey(r, req));
    if (existing?.state === 'ready' && existing.netns === req.netns && existing.network === req.network && this.netnsAlive(existing)) return toJson(existing);
    if (existing) await this.undo(existing);
    const netnsId = netnsIdOf(req.netns);
    if (netnsId === null) throw new LoomError('ERR_NOT_FOUND', `no network namespace at ${req.netns.slice(0, 100)}`);
    const resolver = this.c.resolver?.() ?? null;
    const useLoomIpam = req.address === undefined;
    if (useLoomIpam && !this.c.ipam) throw new LoomError('ERR_UNAVAILABLE', 'Loom IPAM is off on this router; name an IPAM plugin in the conf');
    const record: CniRecord = {
      containerId: req.containerId,
      ifname: req.ifname,
      network: req.network,
      netns: req.netns,
      netnsId,
      state: 'pending',
      ...(useLoomIpam ? { ipamId: ipamIdOf(req) } : {}),
      dnsId: dnsIdOf(req),
      ...(req.podName === undefined ? {} : { podName: req.podName }),
      hostVeth: hostVethOf(req),
      mac: macFromSeed(`cni/${req.containerId}/${req.ifname}`),
      cidr: req.address ?? '',
      routes: [],
    };
    this.store.put(record);
    try {
      if (record.ipamId !== undefined) record.cidr = formatCidr(await this.c.ipam!.assign(record.ipamId, DEFAULT_ADDRESS_SPEC));
      const cidr = parseCidr(record.cidr, { minPrefix: 1 });
      await attachNetwork(
        { links: this.links, clock: this.c.clock },
        { target: { path: req.netns }, cidr, mac: record.mac, bridge: this.init.bridge, mtu: this.init.mtu, hostVeth: record.hostVeth, ifname: req.ifname, exclusive: true },
      );
      const gateway = req.gateway ?? (record.ipamId !== undefined ? resolver?.nameserver : undefined);
      if (gateway !== undefined) {
        record.gateway = gateway;
        // A default route only when the sandbox has none (another network may own it).
        if (this.addDefaultRoute(req.netns, req.ifname, gateway)) record.routes.push({ dst: '0.0.0.0/0', gw: gateway });
      }
      if (resolver) record.dns = { nameservers: [resolver.nameserver], search: [resolver.domain] };
      record.state = 'ready';
      this.store.put(record);
    } catch (err) {
      await this.undo(record);
      throw toLoomError(err);
    }
    this.publishMacs();
    this.announce(record);
    return toJson(record);
  }

  /** Takes everything of `record` away (each step tolerates its part being gone) and forgets it. */
  private async undo(record: CniRecord): Promise<void> {
    this.deleteHostVeth(record.hostVeth);
    this.c.dns?.onContainerGone(record.dnsId);
    if (record.ipamId !== undefined) await this.releaseAddress(record.ipamId);
    this.store.remove(record);
    this.publishMacs();
  }

  /** `ip route add default via GATEWAY dev IFNAME` in the sandbox: false when it has one already (or it fails). */
  private addDefaultRoute(netns: string, ifname: string, gateway: string): boolean {
    try {
      const ns = this.links.open({ path: netns });
      try {
        const link = ns.link(ifname);
        return link !== null && ns.addRoute4({ dst: '0.0.0.0', prefix: 0, oif: link.index, gateway }, false);
      } finally {
        ns.close();
      }
    } catch (err) {
      this.c.logger.warn({ netns: netns.slice(0, 100), err: toLoomError(err).message }, 'cni: default route not added');
      return false;
    }
  }

  /** Deletes the pair by its host end; gone already is fine (undo tolerates every part being gone). */
  private deleteHostVeth(name: string): void {
    try {
      const host = this.links.open(null);
      try {
        host.deleteLink(name);
      } finally {
        host.close();
      }
    } catch (err) {
      this.c.logger.warn({ hostVeth: name, err: toLoomError(err).message }, 'cni: veth not deleted');
    }
  }

  private async collect(gone: (r: CniRecord) => boolean): Promise<AttachmentKey[]> {
    const released: AttachmentKey[] = [];
    for (const r of this.store.load().filter(gone)) {
      await this.undo(r);
      released.push({ containerId: r.containerId, ifname: r.ifname });
      this.c.logger.info({ containerId: r.containerId.slice(0, 64), ifname: r.ifname, netns: r.netns }, 'cni: attachment released');
    }
    return released;
  }

  private async releaseAddress(id: string): Promise<void> {
    if (!this.c.ipam) return;
    try {
      await this.c.ipam.release(id);
    } catch (err) {
      this.c.logger.warn({ id, err: toLoomError(err).message }, 'cni: address not released');
    }
  }

  private announce(r: CniRecord): void {
    if (r.state !== 'ready' || r.podName === undefined || !this.c.dns) return;
    this.c.dns.onContainerStarted(r.podName, parseIpv4Cidr(r.cidr).address, r.dnsId);
  }

  private netnsAlive(r: CniRecord): boolean {
    return netnsIdOf(r.netns) === r.netnsId;
  }

  private publishMacs(): void {
    if (!this.c.macs) return;
    try {
      this.c.macs.setLocalMacs(this.store.load().filter((r) => r.state === 'ready').map((r) => r.mac));
    } catch (err) {
      this.c.logger.warn({ err: toLoomError(err).message }, 'cni: local MACs not published');
    }
  }
}

/** dev:inode of a namespace file, or null when there is none. */
function netnsIdOf(path: string): string | null {
  try {
    if (!existsSync(path)) return null;
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

function toJson(r: CniRecord): CniAttachmentJson {
  return {
    containerId: r.containerId,
    ifname: r.ifname,
    network: r.network,
    netns: r.netns,
    hostVeth: r.hostVeth,
    mac: r.mac,
    cidr: r.cidr,
    ...(r.gateway === undefined ? {} : { gateway: r.gateway }),
    ...(r.dns === undefined ? {} : { dns: r.dns }),
    routes: r.routes,
  };
}
