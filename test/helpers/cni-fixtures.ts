/**
 * The CNI call and the router's attachment answer that the plugin's unit tests and the fuzz
 * targets all start from: an ADD for container abc123 (pod "web") and what the router returns.
 */
import type { CniAttachmentJson } from '../../src/cni/wire.js';

export const CNI_ENV: Readonly<Record<string, string>> = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web' };

export const CNI_ATTACHMENT: CniAttachmentJson = {
  containerId: 'abc123',
  ifname: 'eth0',
  network: 'loom',
  netns: '/run/netns/x',
  hostVeth: 'vlc0123456789ab',
  mac: '02:00:00:00:00:01',
  cidr: '10.32.0.5/12',
  gateway: '10.32.0.1',
  dns: { nameservers: ['10.32.0.1'], search: ['loom.local'] },
  routes: [{ dst: '0.0.0.0/0', gw: '10.32.0.1' }],
};
