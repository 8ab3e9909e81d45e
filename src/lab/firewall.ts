/**
 * Pure nft text for the test lab's "cut the cable" rules. They live in the underlay namespace, in
 * a `bridge` family table hooked at forward: every frame between two lab hosts crosses the
 * underlay bridge, so one table there can cut any pair without touching the hosts. Measured here:
 * bridge-family `ip saddr/daddr` matches work without br_netfilter; `reject` does not (no
 * nft_reject_bridge in this kernel), so blocked traffic is silently dropped, like a dead link.
 * The same table degrades the underlay (`degradeRules`: IPv4 fragments dropped, random loss) and
 * counts the IPv4 fragments crossing it in a chain that runs before every drop rule.
 */
import { LoomError } from '../core/errors.js';

export const LAB_NFT_TABLE = 'loomlab';
export const LAB_NFT_CHAIN = 'forward';

/** The chain that counts, ahead of every drop rule (priority -10 < 0): dropped frames are counted too. */
export const LAB_NFT_COUNT_CHAIN = 'count';
/** Named counter of IPv4 fragments (any packet with MF set or a non-zero offset) crossing br0. */
export const LAB_FRAGMENT_COUNTER = 'ipv4_fragments';
/** Named counter of every IPv4 packet crossing br0, to show the counter chain sees traffic at all. */
export const LAB_PACKET_COUNTER = 'ipv4_packets';

/** Any IPv4 fragment: MF set or a non-zero fragment offset (the DF bit, 0x4000, is masked off). */
const FRAGMENT_MATCH = 'ip frag-off & 0x3fff != 0';

/**
 * Creates the table, the drop chain (empty) and the counting chain with its two counters. For a
 * fresh underlay namespace only: a second `nft -f` of it would add the counting rules twice.
 */
export function labFirewallSetup(): string {
  return [
    `table bridge ${LAB_NFT_TABLE} {`,
    `  chain ${LAB_NFT_CHAIN} { type filter hook forward priority 0; policy accept; }`,
    `  counter ${LAB_FRAGMENT_COUNTER} { }`,
    `  counter ${LAB_PACKET_COUNTER} { }`,
    `  chain ${LAB_NFT_COUNT_CHAIN} {`,
    `    type filter hook forward priority -10; policy accept;`,
    `    ether type ip counter name "${LAB_PACKET_COUNTER}"`,
    `    ${FRAGMENT_MATCH} counter name "${LAB_FRAGMENT_COUNTER}"`,
    `  }`,
    `}`,
    '',
  ].join('\n');
}

/**
 * Conditions of a poor underlay, applied on the underlay bridge to every frame between any two
 * hosts, both directions. The kernel here has no netem; these are nft drops.
 */
export interface DegradeSpec {
  /** Drop every IPv4 fragment (a path that filters them, as many firewalls and clouds do). */
  dropFragments?: boolean;
  /** Drop this share of IPv4 packets at random, 0 < x < 100, at most two decimals. */
  lossPercent?: number;
}

/**
 * The `add rule` lines of one degradation, tagged so it can be lifted alone (`ruleHandlesTagged`).
 * Random loss is `numgen random mod 100 < N` (whole percents) or `mod 10000` (hundredths); it
 * matches IPv4 only, so ARP is never lost (a lost ARP costs a second, not a packet).
 */
export function degradeRules(spec: DegradeSpec, tag: string): string {
  if (!TAG_RE.test(tag)) throw new LoomError('ERR_INVALID_ARGUMENT', `bad block tag "${tag.slice(0, 40)}"`);
  const add = (match: string): string => `add rule bridge ${LAB_NFT_TABLE} ${LAB_NFT_CHAIN} ${match} drop comment "${tag}"`;
  const lines: string[] = [];
  if (spec.dropFragments === true) lines.push(add(FRAGMENT_MATCH));
  if (spec.lossPercent !== undefined) {
    const pct = spec.lossPercent;
    const hundredths = Math.round(pct * 100);
    if (!Number.isFinite(pct) || pct <= 0 || pct >= 100 || Math.abs(hundredths - pct * 100) > 1e-6) {
      throw new LoomError('ERR_INVALID_ARGUMENT', `lossPercent must be > 0 and < 100 with at most two decimals, got ${String(pct)}`);
    }
    lines.push(add(hundredths % 100 === 0 ? `ether type ip numgen random mod 100 < ${hundredths / 100}` : `ether type ip numgen random mod 10000 < ${hundredths}`));
  }
  if (lines.length === 0) throw new LoomError('ERR_INVALID_ARGUMENT', 'degrade needs dropFragments or lossPercent');
  return lines.join('\n') + '\n';
}

/**
 * The packet count of the named counter in `nft -j list counter bridge loomlab NAME` output.
 * Throws ERR_PROTOCOL on output that is not nft's JSON or holds no such counter.
 */
export function counterPackets(nftJson: string, name: string): number {
  const items = nftItems(nftJson);
  for (const item of items) {
    const counter = (item as { counter?: { name?: unknown; packets?: unknown } } | null)?.counter;
    if (counter && counter.name === name) {
      const packets = counter.packets;
      if (typeof packets !== 'number' || !Number.isSafeInteger(packets) || packets < 0) throw new LoomError('ERR_PROTOCOL', `nft counter ${name} has no packet count`);
      return packets;
    }
  }
  throw new LoomError('ERR_PROTOCOL', `nft JSON has no counter "${name.slice(0, 40)}"`);
}

export type BlockSpec =
  | { kind: 'tcp' | 'udp'; a: string; b: string; port?: number }
  | { kind: 'partition'; groupA: readonly string[]; groupB: readonly string[] }
  /** Asymmetric: IPv4 from `from` to `to` is dropped, `to` still reaches `from` (TCP then fails both ways: no replies). */
  | { kind: 'oneway'; from: readonly string[]; to: readonly string[] };

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
  } else if (spec.kind === 'oneway') {
    const from = addressSet(spec.from);
    const to = addressSet(spec.to);
    const overlap = spec.from.filter((x) => spec.to.includes(x));
    if (overlap.length > 0) throw new LoomError('ERR_INVALID_ARGUMENT', `a host cannot be on both sides of a one-way drop: ${overlap.join(', ')}`);
    lines.push(add(`ip saddr ${from} ip daddr ${to}`));
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
  const items = nftItems(nftJson);
  const handles: number[] = [];
  for (const item of items) {
    const rule = (item as { rule?: { comment?: unknown; handle?: unknown } } | null)?.rule;
    if (rule && rule.comment === tag && typeof rule.handle === 'number') handles.push(rule.handle);
  }
  return handles;
}

/** The "nftables" array of `nft -j` output; ERR_PROTOCOL when it is not nft's JSON. */
function nftItems(nftJson: string): unknown[] {
  let doc: unknown;
  try {
    doc = JSON.parse(nftJson);
  } catch (err) {
    throw new LoomError('ERR_PROTOCOL', 'nft did not print JSON', { cause: err });
  }
  const items = (doc as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items)) throw new LoomError('ERR_PROTOCOL', 'nft JSON has no "nftables" array');
  return items;
}
