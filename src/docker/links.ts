/**
 * The veth pair of a Docker endpoint, made in the router's network namespace (which is Docker's:
 * Docker looks the Join's SrcName up in its own namespace and moves it into the container). The
 * host end goes on the Loom bridge, up; the other end gets the endpoint's MAC and stays down until
 * Docker renames it ethweN inside the container. Names come from the endpoint id, so a repeated
 * Join finds its pair again. Over rtnetlink (the link door), no `ip` processes.
 */
import { LoomError } from '../core/errors.js';
import type { NetnsLinks } from '../os/netns-links.js';
import type { EndpointLinks } from './plugin.js';

/** Where the router's own main thread is: both ends of the pair are made here. */
const OWN_NETNS = { path: '/proc/thread-self/ns/net' };

export interface VethNames {
  hostVeth: string;
  containerVeth: string;
}

/** "vld" + 11 hex of the endpoint id (14 characters), and the same + "c" (15, the kernel's limit). */
export function vethNames(endpointId: string): VethNames {
  const tag = endpointId.replace(/[^A-Za-z0-9]/g, '').slice(0, 11);
  return { hostVeth: `vld${tag}`, containerVeth: `vld${tag}c` };
}

export function linuxEndpointLinks(links: NetnsLinks, settings: { bridge: string; mtu: number }): EndpointLinks {
  return {
    async create(endpointId, mac) {
      const { hostVeth, containerVeth } = vethNames(endpointId);
      const own = links.open(null);
      try {
        const bridge = own.link(settings.bridge);
        if (!bridge) throw new LoomError('ERR_UNAVAILABLE', `the Loom bridge ${settings.bridge} does not exist yet`);
        // A pair left by an earlier Join that failed half way: start afresh.
        own.deleteLink(hostVeth);
        own.createVeth({ name: hostVeth, mtu: settings.mtu, master: bridge.index, peer: { name: containerVeth, mtu: settings.mtu, mac, netns: OWN_NETNS } });
      } finally {
        own.close();
      }
      return { hostVeth, containerVeth };
    },
    async remove(hostVeth) {
      const own = links.open(null);
      try {
        own.deleteLink(hostVeth);
      } finally {
        own.close();
      }
    },
  };
}
