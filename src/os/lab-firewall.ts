/**
 * Pure nft text for the test lab's "cut the cable" rules. They live in the underlay namespace, in
 * a `bridge` family table hooked at forward: every frame between two lab hosts crosses the
 * underlay bridge, so one table there can cut any pair without touching the hosts. Measured here:
 * bridge-family `ip saddr/daddr` matches work without br_netfilter; `reject` does not (no
 * nft_reject_bridge in this kernel), so blocked traffic is silently dropped, like a dead link.
 */
import { LoomError } from '../core/errors.js';

export const LAB_NFT_TABLE = 'loomlab';
export const LAB_NFT_CHAIN = 'forward';

/** Creates the (empty) table and chain; `nft -f` of this is idempotent. */
export function labFirewallSetup(): string {
  return [
    `table bridge ${LAB_NFT_TABLE} {`,
    `  chain ${LAB_NFT_CHAIN} { type filter hook forward priority 0; policy accept; }`,
    `}`,
    '',
  ].join('\n');
}

export type BlockSpec =
  | { kind: 'tcp' | 'udp'; a: string; b: string; port?: number }
  | { kind: 'partition'; groupA: readonly string[]; groupB: readonly string[] };

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const TAG_RE = /^lab-b[0-9]{1,9}$/;

function checkAddress(addr: string): string {
  if (!IPV4_RE.test(addr)) throw new LoomError('ERR_INVALID_ARGUMENT', `not an IPv4 address: "${addr.slice(0, 40)}"`);
  return addr;
}

function addressSet(addrs: readonly string[]): string {
  if (addrs.length === 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'a partition group must not be empty');
  return addrs.length === 1 ? checkAddress(addrs[0]!) : `{ ${addrs.map(checkAddress).join(', ')} }`;
}

/**
 * The `add rule` lines for one block, all tagged with `tag` so the block can be lifted alone.
 * A port block matches the port on either side, in both directions, so it cuts connections that
 * are already established as well as new ones.
 */
export function blockRules(spec: BlockSpec, tag: string): string {
  if (!TAG_RE.test(tag)) throw new LoomError('ERR_INVALID_ARGUMENT', `bad block tag "${tag.slice(0, 40)}"`);
  const add = (match: string): string => `add rule bridge ${LAB_NFT_TABLE} ${LAB_NFT_CHAIN} ${match} drop comment "${tag}"`;
  const lines: string[] = [];
  if (spec.kind === 'partition') {
    const a = addressSet(spec.groupA);
    const b = addressSet(spec.groupB);
    const overlap = spec.groupA.filter((x) => spec.groupB.includes(x));
    if (overlap.length > 0) throw new LoomError('ERR_INVALID_ARGUMENT', `a host cannot be on both sides of a partition: ${overlap.join(', ')}`);
    lines.push(add(`ip saddr ${a} ip daddr ${b}`), add(`ip saddr ${b} ip daddr ${a}`));
  } else {
    const a = checkAddress(spec.a);
    const b = checkAddress(spec.b);
    if (a === b) throw new LoomError('ERR_INVALID_ARGUMENT', 'cannot block a host from itself');
    if (spec.port === undefined) {
      lines.push(add(`ip saddr ${a} ip daddr ${b} ip protocol ${spec.kind}`), add(`ip saddr ${b} ip daddr ${a} ip protocol ${spec.kind}`));
    } else {
      if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) {
        throw new LoomError('ERR_INVALID_ARGUMENT', `bad port ${String(spec.port)}`);
      }
      for (const [src, dst] of [
        [a, b],
        [b, a],
      ] as const) {
        for (const side of ['dport', 'sport'] as const) lines.push(add(`ip saddr ${src} ip daddr ${dst} ${spec.kind} ${side} ${spec.port}`));
      }
    }
  }
  return lines.join('\n') + '\n';
}

/**
 * Handles of the rules tagged `tag`, from `nft -j -a list chain bridge loomlab forward`.
 * Throws ERR_PROTOCOL on output that is not nft's JSON.
 */
export function ruleHandlesTagged(nftJson: string, tag: string): number[] {
  let doc: unknown;
  try {
    doc = JSON.parse(nftJson);
  } catch (err) {
    throw new LoomError('ERR_PROTOCOL', 'nft did not print JSON', { cause: err });
  }
  const items = (doc as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items)) throw new LoomError('ERR_PROTOCOL', 'nft JSON has no "nftables" array');
  const handles: number[] = [];
  for (const item of items) {
    const rule = (item as { rule?: { comment?: unknown; handle?: unknown } } | null)?.rule;
    if (rule && rule.comment === tag && typeof rule.handle === 'number') handles.push(rule.handle);
  }
  return handles;
}
