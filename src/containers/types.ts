/** Loom's minimal container runtime: records, specs and events. */
import type { ContainerId } from '../core/ids.js';
import type { Cidr } from '../core/net.js';
import type { ContainerDns } from './resolv-conf.js';

/** What STATE_DIR/containers/<id>.json holds; written durably (temp file + fsync + rename). `cidrs` stay text ("a.b.c.d/n"), as on disk. */
export interface ContainerRecord {
  id: ContainerId;
  name: string;
  /** Host PID of the container's PID 1 (the namespace holder). */
  pid: number;
  /** Start time of `pid` in clock ticks since boot: tells our process from a later one reusing the PID. */
  pidStartTime: number;
  /** Host PID of the `unshare` parent waiting on `pid`. */
  unsharePid: number;
  mac: string;
  cidrs: string[];
  /** Host end of the veth pair, enslaved to `bridge`. */
  hostVeth: string;
  bridge: string;
  createdAt: string;
}

export interface RunSpec {
  /** performance.now() when the run was asked for: the start of the phases logged (default: when the process is spawned). */
  startedAt?: number;
  /** Default: random. Given when an address was allocated for the id before the run. */
  id?: ContainerId;
  name: string;
  /** Host address with prefix, e.g. 10.32.0.5/12. */
  cidr: Cidr;
  /** Default: derived from the container id (see macFromSeed). */
  mac?: string;
  cmd: string[];
  bridge: string;
  mtu: number;
  /** When set, the container's /etc/resolv.conf points at this server (see resolv-conf.ts). */
  dns?: ContainerDns;
  /** The host's address on the bridge in the container's subnet: its default route (egress). */
  gateway?: string;
}

/** A running process's network namespace: by host PID, or a bind-mounted netns file (/run/netns/X). */
export type NetnsTarget = { pid: number } | { path: string };

export interface AttachSpec {
  target: NetnsTarget;
  /** Host address with prefix (1..32). */
  cidr: Cidr;
  mac?: string;
  bridge: string;
  mtu: number;
  /** Host end name; default derived from the target. */
  hostVeth?: string;
  /** The interface inside the namespace; default ethwe (CNI: CNI_IFNAME). */
  ifname?: string;
  /** Refuse (ERR_CONFLICT) when the interface already exists instead of adding the address to it. */
  exclusive?: boolean;
  /**
   * The host's address on the bridge in this address's subnet: the default route goes via it
   * through ethwe, unless the namespace has a default route by another interface (see attach.ts).
   */
  gateway?: string;
}

export interface AttachResult {
  /** null when ethwe already existed and only the address was added. */
  hostVeth: string | null;
  mac: string;
}

/** Told to listeners (DNS, IPAM). `died`: the process ended by itself and was cleaned up. */
export type ContainerEvent = { type: 'started'; container: ContainerRecord } | { type: 'removed'; container: ContainerRecord } | { type: 'died'; container: ContainerRecord };
