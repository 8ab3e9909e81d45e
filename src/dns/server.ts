/**
 * The DNS server containers talk to: UDP and TCP, answers names in our domain from the record
 * store, forwards the rest upstream. Lifecycle: start once, stop (idempotent).
 *
 * Never crashes on input: every datagram and TCP message goes through the answer cache's
 * `peekQuestion` (which only accepts the plain common case) or else through inspectQuery, and
 * handler errors are logged and counted, not thrown.
 *
 * Hot path (a repeated question for a local name): peek at the question, find the encoded answer
 * in the AnswerCache (checked against the store on every hit), copy it with the query's id, RD
 * bit, question bytes and a fresh address order, send. Synchronous: no promise, closure, decode,
 * encode or log per datagram. Everything else takes the full path, which fills the cache.
 *
 * UDP has two paths (`udpPath`, `udp-listener.ts`, docs/DNS.md): "batched" (the default when
 * koffi and glibc are there) reads the socket itself with recvmmsg when it is readable (libuv
 * only reports readiness) and sends the cached replies with one sendmmsg (src/os/udp-batch.ts); "dgram" is Node's
 * one-callback-one-send per datagram. Both answer exactly the same bytes.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server as TcpServer, type Socket as TcpSocket, type AddressInfo } from 'node:net';
import * as dnsPacket from 'dns-packet';
import { LoomError } from '../core/errors.js';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { DEFAULT_DOMAIN, parseName, qualifyName } from './names.js';
import { inspectQuery, headerOnlyReply, newQuestionPeek, peekQuestion, RCODE, type DnsQuery } from './query.js';
import { AnswerCache, cacheEntryFor, encodeWithin, MAX_UDP_PAYLOAD, replyFromCache, replyPacket, resolveLocally, shuffle, udpLimitFor, type AnswerPolicy, type CachedAnswer, type Resolution } from './answer.js';
import { openUdpBatch, watchInsteadOfDgram, type UdpBatchOpening } from '../os/udp-batch.js';
import { UdpListener, type DnsUdpStats, type NativeCounts, type OpenNativeResponder, type TakeOverReading, type UdpAnswerSource, type UdpPathSetting } from './udp-listener.js';
import { NativeDnsResponder, type NativeAnswerTable } from '../os/dns-responder.js';

export type { DnsUdpStats, UdpPath, UdpPathSetting } from './udp-listener.js';
import { UpstreamForwarder, type UpstreamStats } from './upstream.js';
import { COUNTED_QUERY_TYPES, queryTypeIndex } from './query-types.js';
import type { DnsRecordStore, DnsStatusRow } from './store.js';

export interface DnsServerComponents {
  store: DnsRecordStore;
  logger?: Logger;
  /** For upstream timeouts; real sockets need the system clock. */
  clock?: Clock;
  /** Opens the batched UDP path on the bound socket. Default src/os `openUdpBatch`; tests replace it. */
  openUdpBatch?: (socket: UdpSocket) => Promise<UdpBatchOpening>;
  /**
   * How the batched path reads without libuv (src/os `watchInsteadOfDgram`, the default with the
   * default openUdpBatch). With a replaced openUdpBatch, off unless given: a stand-in batch does
   * not read the real socket.
   */
  takeOverReading?: TakeOverReading;
  /**
   * Starts the native responder thread (src/os `NativeDnsResponder.start`, the default with the
   * default openUdpBatch; tests replace it, or pass null for none).
   */
  openNativeResponder?: OpenNativeResponder | null;
}

export interface DnsServerInit {
  /** Default "loom.local". */
  domain?: string;
  /** TTL of our answers. Default 1 s: containers come and go, caches must not hold them long. */
  ttlSeconds?: number;
  /** Default /etc/resolv.conf; re-read when it changes. */
  resolvConfPath?: string;
  /** Budget for a forwarded query across all upstreams before SERVFAIL. Default 2000 ms. */
  upstreamTimeoutMs?: number;
  /** Internal, for tests: the port upstreams listen on (resolv.conf cannot say). Default 53. */
  upstreamPort?: number;
  /** Default 512. */
  maxForwardsInFlight?: number;
  /** Default 128. */
  maxTcpConnections?: number;
  /** A TCP client silent this long is disconnected. Default 10 s. */
  tcpIdleTimeoutMs?: number;
  /** Source of randomness for round-robin order. Default Math.random. */
  random?: () => number;
  /** Encoded answers kept for repeated questions. Default 8192; 0 turns the cache off. */
  answerCacheSize?: number;
  /**
   * Default "auto" (batched when koffi and glibc are there; the daemon passes LOOM_DNS_UDP). A
   * "batched" that cannot be opened logs a warning and serves with dgram: DNS is never lost to it.
   */
  udpPath?: UdpPathSetting;
  /**
   * With udpPath "auto": answer the cache's hot path on a native thread (native/loom-dns.c) when
   * its library loads. Default true; the daemon passes LOOM_DNS_NATIVE (0 turns it off).
   */
  nativeResponder?: boolean;
}


export interface Endpoint {
  host: string;
  port: number;
}

export interface DnsListen {
  udp?: Endpoint;
  tcp?: Endpoint;
}

export interface DnsStats {
  queries: number;
  answeredLocally: number;
  forwarded: number;
  nxdomain: number;
  servfail: number;
  malformed: number;
  dropped: number;
  truncated: number;
}

export interface DnsCacheStats {
  hits: number;
  /** Lookups of a cacheable question that found no current entry. */
  misses: number;
  entries: number;
}

const MAX_TCP_MESSAGE = 65535;
const MAX_TCP_BACKLOG = 1024 * 1024;

export class DnsServer {
  private readonly store: DnsRecordStore;
  private readonly logger: Logger;
  private readonly policy: AnswerPolicy;
  private readonly random: () => number;
  private readonly upstream: UpstreamForwarder;
  private readonly maxTcpConnections: number;
  private readonly tcpIdleTimeoutMs: number;
  private udp: UdpListener | null = null;
  private readonly udpPathSetting: UdpPathSetting;
  private readonly openBatch: (socket: UdpSocket) => Promise<UdpBatchOpening>;
  private readonly takeOverReading: TakeOverReading | undefined;
  private readonly openNative: OpenNativeResponder | undefined;
  private readonly preferNative: boolean;
  /**
   * The native responder's table while the native path serves: cleared on every store change
   * (synchronously, with the store's changeCount as generation), given every entry the JS side
   * answers from. Null otherwise.
   */
  private native: NativeAnswerTable | null = null;
  /** The cache, full path and counters as the UDP listener sees them; made once. */
  private readonly udpAnswers: UdpAnswerSource;
  private tcp: TcpServer | null = null;
  private readonly tcpClients = new Set<TcpSocket>();
  private bound: DnsListen = {};
  private started = false;
  private readonly counters: DnsStats = { queries: 0, answeredLocally: 0, forwarded: 0, nxdomain: 0, servfail: 0, malformed: 0, dropped: 0, truncated: 0 };
  private readonly cache: AnswerCache | null;
  /** Questions by type (query-types.ts), counted where the type is read anyway. */
  private readonly typeCounts: number[] = new Array<number>(COUNTED_QUERY_TYPES.length).fill(0);
  /** Scratch for peekQuestion; valid only until the next synchronous return. */
  private readonly peek = newQuestionPeek();

  constructor(components: DnsServerComponents, init: DnsServerInit = {}) {
    this.store = components.store;
    this.logger = components.logger ?? silentLogger;
    const ttlSeconds = init.ttlSeconds ?? 1;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 0 || ttlSeconds > 86_400) throw new LoomError('ERR_INVALID_CONFIG', 'dns: ttl must be an integer number of seconds in 0..86400');
    this.policy = { domain: parseName(init.domain ?? DEFAULT_DOMAIN), ttlSeconds };
    this.random = init.random ?? Math.random;
    this.maxTcpConnections = init.maxTcpConnections ?? 128;
    this.tcpIdleTimeoutMs = init.tcpIdleTimeoutMs ?? 10_000;
    const cacheSize = init.answerCacheSize ?? 8192;
    if (!Number.isInteger(cacheSize) || cacheSize < 0 || cacheSize > 1_000_000) throw new LoomError('ERR_INVALID_CONFIG', 'dns: answer cache size must be an integer in 0..1000000');
    this.cache = cacheSize === 0 ? null : new AnswerCache(cacheSize);
    this.udpPathSetting = init.udpPath ?? 'auto';
    if (!['auto', 'dgram', 'batched', 'native'].includes(this.udpPathSetting)) throw new LoomError('ERR_INVALID_CONFIG', 'dns: udp path must be auto, dgram, batched or native');
    // As takeOverReading: with a stand-in openUdpBatch (a test of the JS paths), off unless given.
    const defaultNative: OpenNativeResponder | undefined = components.openUdpBatch === undefined ? (socket, onPassed) => NativeDnsResponder.start(socket, onPassed) : undefined;
    this.openNative = components.openNativeResponder === null ? undefined : (components.openNativeResponder ?? defaultNative);
    this.preferNative = init.nativeResponder ?? true;
    this.openBatch = components.openUdpBatch ?? ((socket) => openUdpBatch(socket));
    this.takeOverReading = components.takeOverReading ?? (components.openUdpBatch === undefined ? watchInsteadOfDgram : undefined);
    this.udpAnswers = {
      cachedAnswer: (raw) => this.cachedAnswer(raw, false),
      peek: this.peek,
      random: this.random,
      answerFully: (raw) => this.answerFully(raw, false),
      count: (outcome) => {
        this.counters.queries++;
        this.counters[outcome]++;
      },
      get nativeUsable() {
        return nativeUsable();
      },
      attachNative: (table) => this.attachNative(table),
      countNative: (counts) => this.countNative(counts),
    };
    const nativeUsable = (): boolean => this.cache !== null && this.store.changeCount !== undefined;
    this.upstream = new UpstreamForwarder(
      { clock: components.clock ?? systemClock, logger: this.logger },
      {
        resolvConfPath: init.resolvConfPath ?? '/etc/resolv.conf',
        timeoutMs: init.upstreamTimeoutMs ?? 2000,
        port: init.upstreamPort ?? 53,
        maxInFlight: init.maxForwardsInFlight ?? 512,
        isSelf: (address, port) => [this.bound.udp, this.bound.tcp].some((e) => e !== undefined && e.host === address && e.port === port),
      },
    );
  }

  get domain(): string {
    return this.policy.domain;
  }

  /** Binds the given endpoints (port 0 picks one) and returns what was bound. Once only. */
  async start(listen: DnsListen): Promise<DnsListen> {
    if (this.started) throw new LoomError('ERR_CONFLICT', 'dns server already started');
    this.started = true;
    try {
      if (listen.udp) {
        this.udp = new UdpListener(
          {
            answers: this.udpAnswers,
            logger: this.logger,
            openUdpBatch: this.openBatch,
            ...(this.takeOverReading ? { takeOverReading: this.takeOverReading } : {}),
            ...(this.openNative ? { openNativeResponder: this.openNative } : {}),
            preferNative: this.preferNative,
          },
          this.udpPathSetting,
        );
        this.bound.udp = await this.udp.listen(listen.udp);
      }
      if (listen.tcp) this.bound.tcp = await this.listenTcp(listen.tcp);
    } catch (err) {
      await this.stop();
      throw new LoomError('ERR_UNAVAILABLE', `dns server cannot listen: ${(err as Error).message}`, { cause: err, detail: { listen } });
    }
    this.logger.info({ udp: this.bound.udp, tcp: this.bound.tcp, domain: this.policy.domain }, 'dns server listening');
    return { ...this.bound };
  }

  /** Closes the sockets and every TCP client. Idempotent. */
  async stop(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = null;
    this.tcp = null;
    for (const client of this.tcpClients) client.destroy();
    this.tcpClients.clear();
    if (udp) await udp.close();
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  addresses(): DnsListen {
    return { ...this.bound };
  }

  // ----- records API (local containers) ---------------------------------------------------

  /** A single-label name gets our domain appended. */
  add(name: string, address: string, containerId: string): boolean {
    return this.store.add(qualifyName(name, this.policy.domain), address, containerId);
  }

  remove(name: string, address?: string, containerId?: string): number {
    return this.store.remove(qualifyName(name, this.policy.domain), address, containerId);
  }

  removeContainer(containerId: string): number {
    return this.store.removeContainer(containerId);
  }

  lookup(name: string): string[] {
    return this.store.lookup(qualifyName(name, this.policy.domain));
  }

  dnsStatus(): DnsStatusRow[] {
    return this.store.status();
  }

  stats(): DnsStats {
    this.udp?.foldNativeCounts();
    return { ...this.counters };
  }

  /** Questions answered or forwarded, by type (malformed and dropped messages have none). */
  queryTypeStats(): number[] {
    this.udp?.foldNativeCounts();
    return [...this.typeCounts];
  }

  upstreamStats(): UpstreamStats {
    return this.upstream.stats();
  }

  udpStats(): DnsUdpStats {
    return this.udp?.stats() ?? { path: null, batch: null, native: null };
  }

  /** Hits include the native responder's answers (it answers only what the cache would). */
  cacheStats(): DnsCacheStats {
    this.udp?.foldNativeCounts();
    return { hits: this.cache?.hits ?? 0, misses: this.cache?.misses ?? 0, entries: this.cache?.size ?? 0 };
  }

  // ----- query handling -------------------------------------------------------------------

  /** The reply to one DNS message, or null to send nothing. Never throws. */
  async answer(raw: Buffer, overTcp: boolean): Promise<Buffer | null> {
    return this.answerFromCache(raw, overTcp) ?? this.answerFully(raw, overTcp);
  }

  /** The reply from the answer cache, or undefined when the message needs the full path. Never throws. */
  answerFromCache(raw: Buffer, overTcp: boolean): Buffer | undefined {
    const entry = this.cachedAnswer(raw, overTcp);
    return entry === undefined ? undefined : replyFromCache(entry, raw, this.peek, this.random);
  }

  /**
   * The cache entry answering `raw` (counted as answered), with `this.peek` describing `raw`
   * until the next call; undefined when the message needs the full path. Never throws.
   */
  private cachedAnswer(raw: Buffer, overTcp: boolean): CachedAnswer | undefined {
    const cache = this.cache;
    if (cache === null || !peekQuestion(raw, this.peek)) return undefined;
    const entry = cache.get(this.peek.key, this.store);
    // Too big for this client: the full path truncates it.
    if (entry === undefined || entry.template.length > (overTcp ? MAX_TCP_MESSAGE : this.peek.udpLimit)) return undefined;
    this.counters.queries++;
    this.counters.answeredLocally++;
    this.typeCounts[queryTypeIndex(raw.readUInt16BE(this.peek.nameEnd))]!++;
    if (entry.rcode === RCODE.NXDOMAIN) this.counters.nxdomain++;
    // Current (just checked): the native table may answer the next one itself.
    if (this.native !== null) this.putNative(this.peek.key, entry);
    return entry;
  }

  // ----- the native responder's table -------------------------------------------------------

  /** See `native`. Returns the detach function. */
  private attachNative(table: NativeAnswerTable): () => void {
    this.native = table;
    const clear = (): void => table.clear(this.store.changeCount ?? 0);
    clear();
    const unsubscribe = this.store.onChange(clear);
    return () => {
      unsubscribe();
      if (this.native === table) this.native = null;
    };
  }

  /**
   * Puts an entry found current at the store's present changeCount into the native table (the
   * generation the table was last cleared with: a put for any other is refused there).
   */
  private putNative(key: string, entry: CachedAnswer): void {
    const generation = this.store.changeCount;
    if (this.native === null || generation === undefined || entry.template.length > MAX_UDP_PAYLOAD) return;
    const form = (entry.nativeForm ??= { key: Buffer.from(key, 'latin1'), names: Uint16Array.from(entry.nameOffsets), addresses: Uint16Array.from(entry.addressOffsets) });
    this.native.put(generation, form.key, entry.template, form.names, form.addresses, entry.rcode);
  }

  private countNative(counts: NativeCounts): void {
    const c = this.counters;
    c.queries += counts.answered + counts.dropped;
    c.answeredLocally += counts.answered;
    c.nxdomain += counts.nxdomain;
    c.dropped += counts.dropped;
    if (this.cache !== null) this.cache.hits += counts.answered;
    for (let t = 0; t < counts.byType.length; t++) if (counts.byType[t]! > 0) this.typeCounts[queryTypeIndex(t)]! += counts.byType[t]!;
  }

  private async answerFully(raw: Buffer, overTcp: boolean): Promise<Buffer | null> {
    this.counters.queries++;
    const inspection = inspectQuery(raw);
    switch (inspection.kind) {
      case 'drop':
        this.counters.dropped++;
        return null;
      case 'reply':
        this.counters.malformed++;
        return inspection.response;
      case 'query':
        return this.answerQuery(inspection.query, overTcp);
      default: {
        const never: never = inspection;
        return never;
      }
    }
  }

  private async answerQuery(query: DnsQuery, overTcp: boolean): Promise<Buffer> {
    this.typeCounts[queryTypeIndex(query.raw.readUInt16BE(query.questionEnd - 4))]!++;
    const resolution = resolveLocally(query, this.store, this.policy);
    if (resolution.kind === 'answer') {
      this.counters.answeredLocally++;
      if (resolution.rcode === RCODE.NXDOMAIN) this.counters.nxdomain++;
      const reply = this.encodeLocal(query, resolution, overTcp ? MAX_TCP_MESSAGE : udpLimitFor(query));
      if ((reply[2]! & 0x02) !== 0) this.counters.truncated++;
      return reply;
    }
    this.counters.forwarded++;
    const reply = await this.upstream.forward(query.raw, query.questionEnd, overTcp);
    if (reply) return reply;
    this.counters.servfail++;
    return servfail(query);
  }

  /** Encodes a local answer, through the cache when the question is cacheable. */
  private encodeLocal(query: DnsQuery, resolution: Resolution & { kind: 'answer' }, limit: number): Buffer {
    if (this.cache !== null && peekQuestion(query.raw, this.peek)) {
      const entry = cacheEntryFor(query, this.peek, resolution);
      if (entry !== null) {
        this.cache.set(this.peek.key, entry);
        if (this.native !== null) this.putNative(this.peek.key, entry);
        if (entry.template.length <= limit) return replyFromCache(entry, query.raw, this.peek, this.random);
      }
    }
    if (resolution.shuffle) shuffle(resolution.answers, this.random);
    return encodeWithin(replyPacket(query, resolution.rcode, resolution.answers, resolution.authorities), limit);
  }

  private listenTcp(endpoint: Endpoint): Promise<Endpoint> {
    const server = createServer((client) => this.serveTcpClient(client));
    server.maxConnections = this.maxTcpConnections;
    this.tcp = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(endpoint.port, endpoint.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.logger.warn({ err }, 'dns: tcp server error'));
        const a = server.address() as AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  /** RFC 7766 framing: 2-byte length per message; replies may come back out of order. */
  private serveTcpClient(client: TcpSocket): void {
    this.tcpClients.add(client);
    client.setNoDelay(true);
    client.setTimeout(this.tcpIdleTimeoutMs, () => client.destroy());
    client.on('error', () => client.destroy());
    client.on('close', () => this.tcpClients.delete(client));
    let pending: Buffer = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const size = pending.readUInt16BE(0);
        if (pending.length < size + 2) break;
        const message = Buffer.from(pending.subarray(2, size + 2));
        pending = pending.subarray(size + 2);
        this.answer(message, true).then(
          (reply) => {
            if (!reply || client.destroyed) return;
            const framed = Buffer.allocUnsafe(reply.length + 2);
            framed.writeUInt16BE(reply.length, 0);
            reply.copy(framed, 2);
            client.write(framed);
            // A client that sends but does not read must not grow our memory without bound.
            if (client.writableLength > MAX_TCP_BACKLOG) client.destroy();
          },
          (err: unknown) => this.logger.warn({ err }, 'dns: tcp query failed'),
        );
      }
    });
  }
}

function servfail(query: DnsQuery): Buffer {
  try {
    return dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.RECURSION_AVAILABLE | (query.recursionDesired ? dnsPacket.RECURSION_DESIRED : 0) | RCODE.SERVFAIL,
      questions: [query.question],
    });
  } catch {
    return headerOnlyReply(query.raw, RCODE.SERVFAIL);
  }
}
