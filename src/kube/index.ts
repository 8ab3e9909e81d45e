/**
 * Kubernetes: peers from the API's nodes (list + watch), and the reclaim of deleted nodes'
 * address space through a shared ConfigMap. The front door for the daemon is `LazyKubeSubsystem`
 * (./lazy.ts), which loads the rest only with --kube-peers; the launch options are in
 * ./launch-options.ts (light, for the CLI).
 */
export { LazyKubeSubsystem } from './lazy.js';
export { KUBE_SUBSYSTEM, type KubeLaunchConfig, kubeArgs, parseKubeOptions } from './launch-options.js';
export type { KubeSubsystemComponents, KubeSubsystemInit, KubeReport } from './subsystem.js';
