/**
 * Nodes as Loom needs them (name, address, pod CIDR) and the watch events about them, parsed
 * from `unknown` once. The address is the IPv4 InternalIP, or the ExternalIP of a node that has
 * no internal one (some bare-metal and cloud set-ups). A node with neither is kept (it exists:
 * its peer must not be reclaimed) but gives no peer address.
 */
import { LoomError } from '../core/errors.js';
import { isIpv4Address } from '../core/net.js';
import { isObjectName } from './launch-options.js';

export interface KubeNode {
  name: string;
  /** Where its router listens: the first IPv4 InternalIP, else the first IPv4 ExternalIP; undefined when it reports neither yet. */
  address: string | undefined;
  /** spec.podCIDR, if the cluster assigns one (for the report; Loom's range is its own option). */
  podCidr: string | undefined;
}

export interface NodeList {
  resourceVersion: string;
  nodes: KubeNode[];
}

export type NodeWatchEvent =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; node: KubeNode; resourceVersion: string | undefined }
  | { type: 'BOOKMARK'; resourceVersion: string }
  /** A Status in the stream; 410 = the resourceVersion is too old (relist). */
  | { type: 'ERROR'; code: number; message: string };

const MAX_ADDRESSES = 64;

export function parseNode(value: unknown): KubeNode {
  const obj = record(value, 'node');
  const metadata = record(obj['metadata'], 'node metadata');
  const name = metadata['name'];
  if (!isObjectName(name)) throw new LoomError('ERR_PROTOCOL', 'node without a valid metadata.name');
  const status = optionalRecord(obj['status']);
  const addresses = Array.isArray(status?.['addresses']) ? (status['addresses'] as unknown[]).slice(0, MAX_ADDRESSES) : [];
  let internal: string | undefined;
  let external: string | undefined;
  for (const a of addresses) {
    const addr = optionalRecord(a);
    if (!isIpv4Address(addr?.['address'])) continue;
    if (addr['type'] === 'InternalIP') internal ??= addr['address'];
    else if (addr['type'] === 'ExternalIP') external ??= addr['address'];
  }
  const spec = optionalRecord(obj['spec']);
  const podCidr = typeof spec?.['podCIDR'] === 'string' && spec['podCIDR'].length <= 64 ? spec['podCIDR'] : undefined;
  return { name, address: internal ?? external, podCidr };
}

export function parseNodeList(value: unknown): NodeList {
  const obj = record(value, 'node list');
  const resourceVersion = resourceVersionOf(obj['metadata']);
  if (resourceVersion === undefined) throw new LoomError('ERR_PROTOCOL', 'node list without metadata.resourceVersion');
  if (!Array.isArray(obj['items'])) throw new LoomError('ERR_PROTOCOL', 'node list without items');
  return { resourceVersion, nodes: (obj['items'] as unknown[]).map(parseNode) };
}

export function parseNodeWatchEvent(value: unknown): NodeWatchEvent {
  const obj = record(value, 'watch event');
  const type = obj['type'];
  switch (type) {
    case 'ADDED':
    case 'MODIFIED':
    case 'DELETED': {
      const node = parseNode(obj['object']);
      return { type, node, resourceVersion: resourceVersionOf(record(obj['object'], 'node')['metadata']) };
    }
    case 'BOOKMARK': {
      const resourceVersion = resourceVersionOf(record(obj['object'], 'bookmark')['metadata']);
      if (resourceVersion === undefined) throw new LoomError('ERR_PROTOCOL', 'bookmark without metadata.resourceVersion');
      return { type, resourceVersion };
    }
    case 'ERROR': {
      const status = optionalRecord(obj['object']);
      const code = typeof status?.['code'] === 'number' ? status['code'] : 0;
      const message = typeof status?.['message'] === 'string' ? status['message'].slice(0, 200) : 'no message';
      return { type, code, message };
    }
    default:
      throw new LoomError('ERR_PROTOCOL', `unknown watch event type ${JSON.stringify(type)?.slice(0, 30) ?? 'undefined'}`);
  }
}

function resourceVersionOf(metadata: unknown): string | undefined {
  const rv = optionalRecord(metadata)?.['resourceVersion'];
  return typeof rv === 'string' && rv.length > 0 && rv.length <= 64 ? rv : undefined;
}

function record(value: unknown, what: string): Record<string, unknown> {
  const r = optionalRecord(value);
  if (r === undefined) throw new LoomError('ERR_PROTOCOL', `${what} is not an object`);
  return r;
}

function optionalRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
