/**
 * The test lab: "hosts" as network namespaces on one machine, built by tests, benchmarks and
 * `loom demo`, never by the product. It sits above the OS door (src/os: the command runner,
 * process liveness) and below its users; product code does not import it
 * (test/unit/architecture/dependencies.test.ts holds that line).
 *
 *   netns.ts     the `Lab`: namespaces, underlay bridge, hosts, processes, blocks and degradations
 *   firewall.ts  pure nft text of the underlay's table (blocks, degradations, counters)
 *   nat.ts       puts a host behind a NAT namespace
 *   outside.ts   a namespace on the underlay that is not part of the mesh (egress tests)
 *   procs.ts     finding and stopping the lab's own (marked) processes
 *   cleanup.ts   owner records, and removing what dead labs left behind
 *   exit.ts      teardown on signals and on process exit
 *   containerd.ts  containerd + its CRI plugin in a host, with a folder of its own
 *   sandbox-image.ts  the local pod sandbox image (busybox), no registry
 *   mounts.ts    unmounting what a lab's containerd mounted under its scratch folder
 *   pod-cgroups.ts  the cgroups (and so the processes) of a lab's pods
 *   shims.ts     the sockets containerd's shims leave in /run/containerd/s when killed
 */
export * from './netns.js';
export * from './firewall.js';
export * from './nat.js';
export * from './outside.js';
export * from './procs.js';
export * from './cleanup.js';
export * from './exit.js';
export * from './containerd.js';
export * from './sandbox-image.js';
export * from './mounts.js';
export * from './pod-cgroups.js';
export * from './shims.js';
