import { systemClock } from '../core/clock.js';
import { Router } from '../mesh/router.js';
import { TcpTransport } from '../mesh/transport-tcp.js';
import type { RouterFactory } from './foreground.js';

/** The production router: TCP on all interfaces at the configured port, the system clock. */
export const createRouter: RouterFactory = (config, identity, logger) =>
  new Router(
    { transport: new TcpTransport({ port: config.port, logger }), clock: systemClock, logger },
    {
      identity,
      port: config.port,
      ...(config.password === undefined ? {} : { password: config.password }),
      discovery: config.discovery,
      connLimit: config.connLimit,
      peers: config.peers,
    },
  );
