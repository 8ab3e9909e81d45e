/**
 * The ids a CNI attachment is held under elsewhere: in Loom IPAM `cni:<containerId>:<ifname>`
 * (the fixed contract), in DNS `cni_<containerId>_<ifname>` (DNS record ids allow no colon).
 * Both are bounded to 128 characters; a longer container id is replaced by its SHA-256 prefix.
 */
import { createHash } from 'node:crypto';
import type { AttachmentKey } from './wire.js';

const MAX_ID = 124; // IPAM takes `cni:` + at most 120 characters

function fit(prefix: string, containerId: string, sep: string, ifname: string): string {
  const id = `${prefix}${sep}${containerId}${sep}${ifname}`;
  if (id.length <= MAX_ID) return id;
  return `${prefix}${sep}${createHash('sha256').update(containerId).digest('hex').slice(0, 64)}${sep}${ifname}`;
}

export function ipamIdOf(key: AttachmentKey): string {
  return fit('cni', key.containerId, ':', key.ifname);
}

export function dnsIdOf(key: AttachmentKey): string {
  return fit('cni', key.containerId, '_', key.ifname);
}

/** The host end of the veth pair: `vlc` + 12 hex digits of the key (15 bytes, the kernel's limit). */
export function hostVethOf(key: AttachmentKey): string {
  return `vlc${createHash('sha256').update(`${key.containerId}/${key.ifname}`).digest('hex').slice(0, 12)}`;
}
