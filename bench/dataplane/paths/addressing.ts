/**
 * The addresses every path uses, so that rows differ only in how packets travel.
 * L2 paths put both containers in one subnet; L3 paths (nebula, wireguard-go) give each host its
 * own container subnet, with the host bridge as the gateway.
 */
export const L2_SUBNET_PREFIX = 24;
export const l2Address = (n: 1 | 2): string => `10.99.0.${n}`;
/** Container subnet of host n for routed paths: 10.99.<n>.0/24, gateway .1, container .2. */
export const l3Subnet = (n: 1 | 2): string => `10.99.${n}.0/24`;
export const l3Gateway = (n: 1 | 2): string => `10.99.${n}.1`;
export const l3Address = (n: 1 | 2): string => `10.99.${n}.2`;
/** Overlay addresses of the hosts themselves, for peers that need one (nebula). */
export const overlayHostAddress = (n: 1 | 2): string => `10.98.0.${n}`;
export const containerMac = (n: 1 | 2): string => `02:42:0a:63:00:0${n}`;
