/**
 * Forwards queries for names outside our domain to the resolvers of a resolv.conf, each in turn,
 * within one overall time budget. The client's query bytes are relayed as they are (so its EDNS
 * size travels with it) under a fresh random id; a reply is accepted only from the address we
 * asked, with that id, QR set and the same question bytes.
 */
import { createSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import { randomInt } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { LatencyHistogram, type HistogramSnapshot } from '../core/histogram.js';
import type { Logger } from '../core/logger.js';
import { ResolvConfWatcher } from './resolv-conf.js';

export interface UpstreamInit {
  resolvConfPath: string;
  /** Budget for one query across all upstreams; SERVFAIL after it. */
  timeoutMs: number;
  /**
   * Port the upstreams listen on. resolv.conf has no port syntax, so this is 53 in production;
   * tests point it at a fake upstream on 127.0.0.1 (an internal override, see docs/DNS.md).
   */
  port: number;
  /** Most forwarded queries in flight; further ones fail at once (SERVFAIL). */
  maxInFlight: number;
  /** True for an upstream that is this server itself (never forward to it: a loop). */
  isSelf: (address: string, port: number) => boolean;
}

/**
 * Why a forwarded query or one upstream exchange failed: timeout (no reply from that resolver in
 * its share of the budget), servfail/refused (its reply), busy (too many forwards in flight),
 * no_upstream (resolv.conf lists none but ourselves).
 */
export const UPSTREAM_FAILURES = ['timeout', 'servfail', 'refused', 'busy', 'no_upstream'] as const;
export type UpstreamFailure = (typeof UPSTREAM_FAILURES)[number];

export interface UpstreamStats {
  failures: Record<UpstreamFailure, number>;
  /** Seconds from forwarding a query to the reply we pass on (queries that got one). */
  latency: HistogramSnapshot;
}

export function zeroUpstreamFailures(): Record<UpstreamFailure, number> {
  return { timeout: 0, servfail: 0, refused: 0, busy: 0, no_upstream: 0 };
}

const RCODE_SERVFAIL = 2;
const RCODE_REFUSED = 5;
const MAX_TCP_REPLY = 65535;

export class UpstreamForwarder {
  private readonly resolvConf: ResolvConfWatcher;
  private inFlight = 0;
  private readonly failures = zeroUpstreamFailures();
  private readonly latency = new LatencyHistogram();

  constructor(
    private readonly components: { clock: Clock; logger: Logger },
    private readonly init: UpstreamInit,
  ) {
    this.resolvConf = new ResolvConfWatcher(init.resolvConfPath);
  }

  /**
   * The upstream's reply with the client's id restored, or null when none answered in time.
   * `questionEnd` is the offset just past the question section of `query`.
   * `overTcp`: the client asked over TCP, so a truncated UDP reply is retried over TCP.
   */
  async forward(query: Buffer, questionEnd: number, overTcp: boolean): Promise<Buffer | null> {
    if (this.inFlight >= this.init.maxInFlight) {
      this.failures.busy++;
      return null;
    }
    this.inFlight++;
    const started = this.components.clock.now();
    try {
      const reply = await this.tryEach(query, questionEnd, overTcp);
      if (reply) this.latency.observe((this.components.clock.now() - started) / 1000);
      return reply;
    } finally {
      this.inFlight--;
    }
  }

  stats(): UpstreamStats {
    return { failures: { ...this.failures }, latency: this.latency.snapshot() };
  }

  private async tryEach(query: Buffer, questionEnd: number, overTcp: boolean): Promise<Buffer | null> {
    const { clock } = this.components;
    const port = this.init.port;
    const servers = (await this.resolvConf.nameservers()).filter((s) => !this.init.isSelf(s, port));
    if (servers.length === 0) {
      this.failures.no_upstream++;
      this.components.logger.debug('dns: no upstream resolvers');
      return null;
    }
    const deadline = clock.now() + this.init.timeoutMs;
    const clientId = query.readUInt16BE(0);
    let fallback: Buffer | null = null;
    for (let i = 0; i < servers.length; i++) {
      const server = servers[i]!;
      const remaining = deadline - clock.now();
      if (remaining <= 0) break;
      const id = randomInt(0, 0x10000);
      const outgoing = Buffer.from(query);
      outgoing.writeUInt16BE(id, 0);
      const accept = (reply: Buffer): boolean => isReplyTo(reply, outgoing, questionEnd);
      let reply = await udpExchange(server, port, outgoing, remaining / (servers.length - i), accept, clock);
      if (reply && overTcp && (reply[2]! & 0x02) !== 0) {
        reply = (await tcpExchange(server, port, outgoing, Math.max(1, deadline - clock.now()), accept, clock)) ?? reply;
      }
      if (!reply) {
        this.failures.timeout++;
        continue;
      }
      reply.writeUInt16BE(clientId, 0);
      const rcode = reply[3]! & 0x0f;
      if (rcode === RCODE_SERVFAIL || rcode === RCODE_REFUSED) {
        this.failures[rcode === RCODE_SERVFAIL ? 'servfail' : 'refused']++;
        fallback = reply;
        continue;
      }
      return reply;
    }
    return fallback;
  }
}

function isReplyTo(reply: Buffer, query: Buffer, questionEnd: number): boolean {
  if (reply.length < questionEnd || reply.readUInt16BE(0) !== query.readUInt16BE(0)) return false;
  if ((reply[2]! & 0x80) === 0) return false;
  return reply.subarray(4, 6).equals(query.subarray(4, 6)) && reply.subarray(12, questionEnd).equals(query.subarray(12, questionEnd));
}

function udpExchange(server: string, port: number, query: Buffer, timeoutMs: number, accept: (b: Buffer) => boolean, clock: Clock): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const socket = createSocket(isIP(server) === 6 ? 'udp6' : 'udp4');
    let done = false;
    const finish = (reply: Buffer | null): void => {
      if (done) return;
      done = true;
      timer.cancel();
      try {
        socket.close();
      } catch {
        // already closed by an error
      }
      resolve(reply);
    };
    const timer = clock.setTimeout(() => finish(null), timeoutMs);
    socket.on('error', () => finish(null));
    socket.on('message', (msg, rinfo) => {
      if (rinfo.port === port && sameAddress(rinfo.address, server) && accept(msg)) finish(msg);
    });
    socket.send(query, port, server, (err) => {
      if (err) finish(null);
    });
  });
}

function tcpExchange(server: string, port: number, query: Buffer, timeoutMs: number, accept: (b: Buffer) => boolean, clock: Clock): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const socket = connect({ host: server, port });
    let done = false;
    let received = Buffer.alloc(0);
    const finish = (reply: Buffer | null): void => {
      if (done) return;
      done = true;
      timer.cancel();
      socket.destroy();
      resolve(reply);
    };
    const timer = clock.setTimeout(() => finish(null), timeoutMs);
    socket.on('error', () => finish(null));
    socket.on('close', () => finish(null));
    socket.on('connect', () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(query.length);
      socket.write(Buffer.concat([length, query]));
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length > MAX_TCP_REPLY + 2) return finish(null);
      if (received.length < 2) return;
      const size = received.readUInt16BE(0);
      if (received.length < size + 2) return;
      const reply = Buffer.from(received.subarray(2, size + 2));
      finish(accept(reply) ? reply : null);
    });
  });
}

function sameAddress(a: string, b: string): boolean {
  return a === b || a === `::ffff:${b}` || b === `::ffff:${a}`;
}
