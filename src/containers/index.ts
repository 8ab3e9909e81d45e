/** Loom's minimal container runtime (`loom run / attach / exec / ps / rm`) and its events. */
export * from './types.js';
export { ContainerRuntime, type RuntimeComponents, type RuntimeInit } from './runtime.js';
export { ContainerStore } from './store.js';
export { attachNetwork, CONTAINER_IFNAME } from './attach.js';
export { procProcessTable, type ProcessTable } from './processes.js';
export { parseContainerName, parseRunSpec } from './validate.js';
