/**
 * Egress: containers reach addresses outside the overlay through their own host, as Weave's
 * `expose` plus NAT did. The host forwards (net.ipv4.ip_forward in the router's namespace) and,
 * unless `--no-masq`, masquerades what the Loom range sends out of any interface but the bridge.
 * This file is the pure half: the nftables table Loom owns, read back from `nft -j` and planned
 * like the links (`plan.ts`); `linux/egress.ts` applies it.
 *
 * The table (family ip, name `loom`), one chain, two rules, each identified by its comment:
 *
 *   chain postrouting { type nat hook postrouting priority srcnat; policy accept;
 *     ip saddr RANGE ip daddr RANGE return          comment "loom: RANGE to RANGE"
 *     ip saddr RANGE oifname != BRIDGE masquerade   comment "loom: masquerade RANGE out of !BRIDGE" }
 *
 * - Between containers (RANGE to RANGE) nothing is ever rewritten: the first rule returns before
 *   the masquerade, whatever interface the packet leaves by; bridged frames (fast path, relay tap)
 *   are not routed at all, and with br_netfilter loaded they leave by the bridge, which the second
 *   rule excludes.
 * - RANGE is the whole allocation range (--ipalloc-range), not a subnet: containers in any IPAM
 *   subnet are masqueraded, and traffic between two subnets of the range is not.
 * - A rule's comment names everything the rule matches, so a rule with the right comment is the
 *   right rule; a change of range or bridge gives new comments and the old rules go.
 *
 * Contract: `planEgress(current, desired)` is pure; applying its ops and reading the table back
 * gives a state for which it is empty (idempotent, no duplicates after any number of restarts).
 */
import { LoomError } from '../core/errors.js';
import { formatCidr, parseNetworkCidr } from '../core/net.js';

export const EGRESS_TABLE = 'loom';
export const EGRESS_FAMILY = 'ip';
export const EGRESS_CHAIN = 'postrouting';
/** The chain's hook: source NAT after routing; `srcnat` is priority 100. */
export const EGRESS_CHAIN_SPEC = { type: 'nat', hook: 'postrouting', prio: 100 } as const;

/** What the router wants of egress. */
export interface EgressSpec {
  /** The Loom allocation range, canonical "a.b.c.d/n" (a block). */
  range: string;
  /** The Loom bridge: traffic leaving by it stays on the overlay and is never masqueraded. */
  bridge: string;
  /** False with `--no-masq`: no table at all (forwarding stays on). */
  masquerade: boolean;
}

/** One rule of Loom's table: its match-and-verdict words (nft syntax, one word per element) and its identity. */
export interface EgressRule {
  comment: string;
  words: string[];
}

/** The table as read from the kernel; null = no table. */
export interface CurrentEgress {
  chains: Array<{ name: string; type: string | null; hook: string | null; prio: number | null }>;
  rules: Array<{ chain: string; handle: number; comment: string | null }>;
}

export type EgressOp =
  | { op: 'add-table' }
  /** Deletes the whole table (with its chains and rules): `--no-masq`, or a chain of the wrong kind. */
  | { op: 'delete-table'; reason: string }
  | { op: 'add-chain' }
  | { op: 'add-rule'; rule: EgressRule }
  | { op: 'delete-rule'; handle: number; reason: string };

const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/** Checks `spec` (range a block, bridge a plain interface name); returns it with the range canonical. */
export function validateEgressSpec(spec: EgressSpec): EgressSpec {
  if (!IFNAME_RE.test(spec.bridge)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid bridge name "${spec.bridge.slice(0, 20)}"`);
  return { ...spec, range: formatCidr(parseNetworkCidr(spec.range)) };
}

/** The rules of the chain, in order. Empty when masquerading is off. */
export function egressRules(spec: EgressSpec): EgressRule[] {
  if (!spec.masquerade) return [];
  const { range, bridge } = validateEgressSpec(spec);
  return [
    { comment: `loom: ${range} to ${range}`, words: ['ip', 'saddr', range, 'ip', 'daddr', range, 'return'] },
    // The quotes are nft's own string syntax (the words go to nft as separate arguments, no shell).
    { comment: `loom: masquerade ${range} out of !${bridge}`, words: ['ip', 'saddr', range, 'oifname', '!=', `"${bridge}"`, 'masquerade'] },
  ];
}

/**
 * The ops from `current` to `desired`. Without masquerading: delete the table if it exists.
 * With it: create what is missing; a chain of another type, hook or priority, or any chain but
 * ours, makes the table be recreated; rules that are not wanted, or wanted but duplicated or out
 * of order, are deleted and the missing ones appended (so the order of the chain is the order of
 * `egressRules`).
 */
export function planEgress(current: CurrentEgress | null, desired: EgressSpec): EgressOp[] {
  const want = egressRules(desired);
  if (want.length === 0) return current ? [{ op: 'delete-table', reason: 'masquerading off' }] : [];
  const ops: EgressOp[] = [];
  let have = current;
  const wrongChain = have?.chains.find((c) => c.name !== EGRESS_CHAIN || c.type !== EGRESS_CHAIN_SPEC.type || c.hook !== EGRESS_CHAIN_SPEC.hook || c.prio !== EGRESS_CHAIN_SPEC.prio);
  if (have && wrongChain) {
    ops.push({ op: 'delete-table', reason: `chain ${wrongChain.name} is not Loom's (type ${wrongChain.type ?? '-'} hook ${wrongChain.hook ?? '-'} prio ${wrongChain.prio ?? '-'})` });
    have = null;
  }
  if (!have) ops.push({ op: 'add-table' });
  if (!have || have.chains.length === 0) ops.push({ op: 'add-chain' });
  const rules = have ? [...have.rules].sort((a, b) => a.handle - b.handle) : [];
  // Keep the longest prefix of the chain that matches the wanted rules in order; the rest goes.
  let kept = 0;
  for (const r of rules) {
    if (kept < want.length && r.chain === EGRESS_CHAIN && r.comment === want[kept]!.comment) kept++;
    else ops.push({ op: 'delete-rule', handle: r.handle, reason: r.comment === null ? 'a rule without comment' : `not wanted here: ${r.comment}` });
  }
  for (const rule of want.slice(kept)) ops.push({ op: 'add-rule', rule });
  return ops;
}

/** Each op as the arguments of one `nft` run (never a shell string). */
export function egressCommand(op: EgressOp): string[] {
  const table = [EGRESS_FAMILY, EGRESS_TABLE];
  switch (op.op) {
    case 'add-table':
      return ['add', 'table', ...table];
    case 'delete-table':
      return ['delete', 'table', ...table];
    case 'add-chain':
      return ['add', 'chain', ...table, EGRESS_CHAIN, '{', 'type', EGRESS_CHAIN_SPEC.type, 'hook', EGRESS_CHAIN_SPEC.hook, 'priority', String(EGRESS_CHAIN_SPEC.prio), ';', 'policy', 'accept', ';', '}'];
    case 'add-rule':
      return ['add', 'rule', ...table, EGRESS_CHAIN, ...op.rule.words, 'comment', `"${op.rule.comment}"`];
    case 'delete-rule':
      return ['delete', 'rule', ...table, EGRESS_CHAIN, 'handle', String(op.handle)];
    default: {
      const never: never = op;
      throw new Error(`unhandled egress op ${JSON.stringify(never)}`);
    }
  }
}

/**
 * Loom's table from `nft -j list table ip loom` output. Throws ERR_PROTOCOL on output that is not
 * nft's JSON. (A missing table is nft's exit status, seen by the caller, not this parser.)
 */
export function parseEgressTable(json: string): CurrentEgress {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new LoomError('ERR_PROTOCOL', 'nft -j output is not JSON', { cause: err });
  }
  const items = (doc as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items)) throw new LoomError('ERR_PROTOCOL', 'nft -j output has no "nftables" list');
  const current: CurrentEgress = { chains: [], rules: [] };
  for (const item of items as unknown[]) {
    if (typeof item !== 'object' || item === null) continue;
    const chain = (item as { chain?: Record<string, unknown> }).chain;
    if (chain && chain['table'] === EGRESS_TABLE && chain['family'] === EGRESS_FAMILY) {
      current.chains.push({ name: String(chain['name']), type: stringOrNull(chain['type']), hook: stringOrNull(chain['hook']), prio: typeof chain['prio'] === 'number' ? chain['prio'] : null });
    }
    const rule = (item as { rule?: Record<string, unknown> }).rule;
    if (rule && rule['table'] === EGRESS_TABLE && rule['family'] === EGRESS_FAMILY) {
      const handle = rule['handle'];
      if (typeof handle !== 'number' || !Number.isSafeInteger(handle)) throw new LoomError('ERR_PROTOCOL', 'nft rule without a handle');
      current.rules.push({ chain: String(rule['chain']), handle, comment: stringOrNull(rule['comment']) });
    }
  }
  return current;
}

function stringOrNull(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
