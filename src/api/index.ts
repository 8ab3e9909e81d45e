/** The daemon's local HTTP API: server, route table, mesh routes, metrics, and the client the CLI uses. */
export { ApiServer, TCP_READ_ONLY_MESSAGE, type ApiServerComponents, type ApiServerInit, type ApiListenAddress, type PeerUid, type ReportSection, type MetricsSource } from './server.js';
export { RouteTable, READ_ONLY_METHODS, isReadOnlyMethod, type ApiRequest, type ApiResponse, type HttpMethod, type RouteHandler } from './route-table.js';
export { registerRouterRoutes, type RouterRoutesOptions } from './router-routes.js';
export { createRouterMetrics, type RouterMetrics } from './metrics.js';
export { ApiClient, DEFAULT_HTTP_ADDR, apiEndpoint, type ApiClientInit, type ApiEndpoint, type Report } from './client.js';
export { HTTP_STATUS_BY_CODE, errorResponse, type ErrorBody } from './http-errors.js';
export { MAX_BODY_BYTES, readJsonBody } from './body.js';
export { DEFAULT_API_SOCKET, MAX_API_SOCKET_BYTES, parseApiSocketName, parseHostPort, parsePeerTarget, parsePort, parseWith, type HostPort } from './validate.js';
export { LOOM_VERSION } from './version.js';
