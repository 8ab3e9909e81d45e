/** The CNI plugin (`loom-cni`, plugin side: main.ts, plugin.ts) and its router side (daemon.ts, routes.ts). */
export { CNI_ROUTES } from './api.js';
export { CNI_SUBSYSTEM, CniSubsystem, type CniComponents, type CniInit } from './daemon.js';
export { registerCniRoutes, localCniTransport } from './routes.js';
export { runCniExec, fallbackReason, isOwnApi, execAnswerText, type ExecAnswer, type CniApiAddress } from './exec.js';
export { runPlugin, type PluginIo, type PluginOutput } from './plugin.js';
export { SUPPORTED_VERSIONS, CNI_ERRORS, CniError } from './spec.js';
