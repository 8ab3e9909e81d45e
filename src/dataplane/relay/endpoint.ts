/**
 * The relay's view of its underlay sockets: src/os/udp-endpoint.ts (a UDP socket owned through
 * koffi, with DF on every datagram, UDP GSO trains on send and UDP GRO + recvmmsg on receive).
 * Tests pass a factory that wraps the real endpoint to record what goes on the wire.
 */
import { UdpEndpoint, type UdpEndpointOptions } from '../../os/udp-endpoint.js';

export type DatagramEndpoint = Pick<
  UdpEndpoint,
  'port' | 'receive' | 'data' | 'segmentSize' | 'sourceIp' | 'sourcePort' | 'queue' | 'flush' | 'sendNow' | 'onSendError' | 'stats' | 'close'
>;

export type EndpointFactory = (options: UdpEndpointOptions) => DatagramEndpoint;

export const openUdpEndpoint: EndpointFactory = (options) => UdpEndpoint.open(options);

export const EMSGSIZE = 90;
