/**
 * The veth pair of a Docker endpoint, made in the router's network namespace (which is Docker's:
 * Docker looks the Join's SrcName up in its own namespace and moves it into the container). The
 * host end goes on the Loom bridge; Docker renames the other end ethweN inside the container.
 * Names come from the endpoint id, so a repeated Join finds its pair again.
 */
import type { CommandRunner } from '../os/runner.js';
import type { EndpointLinks } from './plugin.js';

export interface VethNames {
  hostVeth: string;
  containerVeth: string;
}

/** "vld" + 11 hex of the endpoint id (14 characters), and the same + "c" (15, the kernel's limit). */
export function vethNames(endpointId: string): VethNames {
  const tag = endpointId.replace(/[^A-Za-z0-9]/g, '').slice(0, 11);
  return { hostVeth: `vld${tag}`, containerVeth: `vld${tag}c` };
}

export function linuxEndpointLinks(runner: CommandRunner, settings: { bridge: string; mtu: number }): EndpointLinks {
  return {
    async create(endpointId, mac) {
      const { hostVeth, containerVeth } = vethNames(endpointId);
      const mtu = String(settings.mtu);
      // A pair left by an earlier Join that failed half way: start afresh.
      await runner.run('ip', ['link', 'del', hostVeth], { allowFailure: true });
      await runner.run('ip', ['link', 'add', hostVeth, 'mtu', mtu, 'type', 'veth', 'peer', 'name', containerVeth, 'mtu', mtu]);
      try {
        await runner.run('ip', ['link', 'set', containerVeth, 'address', mac]);
        await runner.run('ip', ['link', 'set', hostVeth, 'master', settings.bridge, 'up']);
      } catch (err) {
        await runner.run('ip', ['link', 'del', hostVeth], { allowFailure: true });
        throw err;
      }
      return { hostVeth, containerVeth };
    },
    async remove(hostVeth) {
      await runner.run('ip', ['link', 'del', hostVeth], { allowFailure: true });
    },
  };
}
