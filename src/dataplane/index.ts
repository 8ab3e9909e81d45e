/**
 * The data plane: a bridge per host, one kernel VXLAN device (the fast path) and its FDB, the
 * relay's tap beside it, driven declaratively. Pure planning lives here; the Linux side in ./linux/.
 */
export * from './types.js';
export { plan, planTeardown, desiredFdb, fdbKey } from './plan.js';
export { parseLinks, parseFdb, parseBridgeFdb } from './parse.js';
export { parseDesiredDataplane } from './validate.js';
export { parseInterfaceName, parseUnicastMac, parseIpv4, parseIpv4Cidr, macFromSeed, type Ipv4Cidr } from './addresses.js';
export { egressRules, planEgress, egressCommand, parseEgressTable, validateEgressSpec, EGRESS_TABLE, EGRESS_FAMILY, EGRESS_CHAIN, type EgressSpec, type EgressRule, type EgressOp, type CurrentEgress } from './egress.js';
