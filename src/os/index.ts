export * from './runner.js';
export * from './process.js';
export * from './durable-file.js';
// These two load koffi (libc) on import.
export { availableFdWatchKinds, watchReadable, POLL_TIMEOUT_MS, type FdWatch, type FdWatchKind, type FdWatchOptions } from './fd-watch.js';
export { UdpEndpoint, ipv4ToU32, u32ToIpv4, MAX_GSO_SEGMENTS, MAX_GSO_BYTES, type UdpEndpointOptions, type UdpEndpointStats, type SendErrorListener } from './udp-endpoint.js';
