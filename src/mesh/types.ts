/**
 * The contracts between the parts of the mesh. Written first so that topology/gossip/router,
 * the wire protocol and the transports, and the API can be built side by side.
 * Change a contract here only together with every user of it.
 */
import type { PeerName, PeerUid } from '../core/ids.js';
import type { LoomError } from '../core/errors.js';

// ---------------------------------------------------------------------------------------------
// Gossip: the contract every replicated subsystem (topology, IPAM ring, DNS records) plugs into.
// Modelled on weaveworks/mesh: send, receive, and data that encodes itself and merges.
// ---------------------------------------------------------------------------------------------

/** State that can be sent and merged. Merge is commutative, associative and idempotent. */
export interface GossipData {
  /** Wire form; the receiving Gossiper decodes it. May be called more than once. */
  encode(): Uint8Array;
  /**
   * Folds `other` into this and returns the result (may be `this`, mutated). Used to merge
   * pending gossip for a slow connection instead of queueing it.
   */
  merge(other: GossipData): GossipData;
}

/** Implemented by a subsystem; called by the router. */
export interface Gossiper {
  /** Complete state for anti-entropy and for a newly established connection; null if none. */
  gossip(): GossipData | null;
  /** Merge state received from a neighbour; return what was new to us (to pass on), or null. */
  onGossip(update: Uint8Array): GossipData | null;
  /** Merge a broadcast that originated at `src`; return what was new to us, or null. */
  onGossipBroadcast(src: PeerName, update: Uint8Array): GossipData | null;
  /** A message addressed to this peer. */
  onGossipUnicast(src: PeerName, msg: Uint8Array): void;
}

/** Handed to a subsystem by `router.newGossipChannel(name, gossiper)`. */
export interface GossipChannel {
  readonly name: string;
  /** Sends to one peer, relayed along unicast routes. Dropped if no route. */
  gossipUnicast(dst: PeerName, msg: Uint8Array): void;
  /** Delivers to every reachable peer once, along the broadcast tree rooted at this peer. */
  gossipBroadcast(update: GossipData): void;
  /** Schedules `update` for the neighbours' pending gossip (merged, not queued). */
  gossipNeighbours(update: GossipData): void;
}

/** What the mesh knows that other subsystems need (IPAM, DNS, data plane). */
export interface MeshView {
  readonly self: PeerName;
  /** Peers reachable from us (including us), in a stable order. */
  reachablePeers(): PeerName[];
  isReachable(peer: PeerName): boolean;
  nicknameOf(peer: PeerName): string | undefined;
  /** Called after any change of topology or routes; returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
}

// ---------------------------------------------------------------------------------------------
// Transport: ordered byte streams. TCP in production, an in-memory pair on a fake clock in
// simulations. The same protocol code (handshake, framing, crypto) runs over both.
// ---------------------------------------------------------------------------------------------

export interface ByteStream {
  /** "host:port" of the other end as seen by us (for status and for dialling back). */
  readonly remoteAddress: string;
  /** Queues bytes; ownership of `chunk` passes to the stream. Returns false when over the high-water mark. */
  write(chunk: Uint8Array): boolean;
  /** Closes our side; `err` makes it an abortive close (reset). Idempotent. */
  close(err?: LoomError): void;
  /** Exactly one listener each; set once before data flows. */
  onData(listener: (chunk: Uint8Array) => void): void;
  onDrain(listener: () => void): void;
  /** Fires once, when the stream is closed by either side. */
  onClose(listener: (err: LoomError | null) => void): void;
}

export interface Transport {
  /** Starts accepting; each accepted stream is passed to `onStream`. */
  listen(onStream: (stream: ByteStream) => void): Promise<void>;
  /** Dials "host:port"; rejects with a LoomError if it cannot connect. */
  dial(address: string): Promise<ByteStream>;
  /** Stops listening and closes nothing else. Idempotent. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Control messages carried over an established, possibly encrypted, connection.
// Wire format in docs/PROTOCOL.md; codec in src/mesh/protocol.ts.
// ---------------------------------------------------------------------------------------------

export type ControlMessage =
  | { type: 'heartbeat' }
  | { type: 'gossip'; channel: string; payload: Uint8Array }
  /** `hopsLeft`: relays decrement it and drop the message at 0 (default 64), so views that disagree cannot loop it. */
  | { type: 'gossip-unicast'; channel: string; src: PeerName; dst: PeerName; payload: Uint8Array; hopsLeft?: number }
  | { type: 'gossip-broadcast'; channel: string; src: PeerName; payload: Uint8Array }
  /** The sender is closing on purpose (shutdown, duplicate resolution); `reason` is for logs and status. */
  | { type: 'goodbye'; reason: string };

/** What each side says about itself in the handshake. */
export interface PeerIdentity {
  name: PeerName;
  nickname: string;
  uid: PeerUid;
}

/** Keys from the handshake, for the data plane to reuse (issue "Data plane"). */
export interface SessionKeys {
  /** 32-byte key for what this side sends. */
  send: Uint8Array;
  /** 32-byte key for what this side receives. */
  receive: Uint8Array;
}

/** A connection after a successful handshake. Produced by src/mesh/connection.ts. */
export interface ProtocolConnection {
  readonly remote: PeerIdentity;
  readonly outbound: boolean;
  readonly remoteAddress: string;
  /** The TCP port the peer listens on (sent in its hello): remote IP + this port is dialable. */
  readonly remoteListenPort: number;
  readonly protocolVersion: number;
  readonly encrypted: boolean;
  /** Derived per connection even without a password (then not secret); null never. */
  readonly sessionKeys: SessionKeys;
  /** Sends one message; false when the stream is backed up (the router then keeps gossip pending). */
  send(msg: ControlMessage): boolean;
  onMessage(listener: (msg: ControlMessage) => void): void;
  onDrain(listener: () => void): void;
  /** Fires once; `err` is null for an orderly close. */
  onClose(listener: (err: LoomError | null) => void): void;
  /** Idempotent. Sends `goodbye` first when `reason` is given and the stream is open. */
  close(reason?: string, err?: LoomError): void;
}

// ---------------------------------------------------------------------------------------------
// Status snapshot: one per router, feeding `loom status`, `loom report`, /metrics, the web page.
// ---------------------------------------------------------------------------------------------

export type ConnectionState = 'connecting' | 'pending' | 'established' | 'retrying' | 'failed';

export interface ConnectionStatus {
  /** "host:port" */
  address: string;
  outbound: boolean;
  state: ConnectionState;
  /** Human-readable: the peer ("8a:..:01(host2)"), or the error when failed/retrying. */
  info: string;
  /** Present once the handshake told us who it is. */
  peer?: { name: PeerName; nickname: string };
  encrypted?: boolean;
  /** Stable error code when failed/retrying. */
  errorCode?: string;
  /** Epoch ms of the next attempt, when retrying. */
  retryAt?: number;
  attempts?: number;
}

export interface PeerStatus {
  name: PeerName;
  nickname: string;
  uid: PeerUid;
  version: number;
  connections: Array<{ name: PeerName; nickname: string; address: string; outbound: boolean; established: boolean }>;
}

export interface RouterStatus {
  name: PeerName;
  nickname: string;
  uid: PeerUid;
  protocol: string;
  protocolMinVersion: number;
  protocolMaxVersion: number;
  encryption: boolean;
  peerDiscovery: boolean;
  port: number;
  targets: string[];
  connections: ConnectionStatus[];
  peers: PeerStatus[];
  routes: {
    /** One row per reachable peer other than us. */
    unicast: Array<{ destination: PeerName; via: PeerName; hops: number }>;
    /** Neighbours we forward our own broadcasts to. */
    broadcast: PeerName[];
  };
  stats: {
    terminations: number;
    /** Inbound handshakes that failed in a way no peer with our password causes (wrong password, garbage, timeout...). */
    handshakesFailed: number;
    /** Inbound connections closed at accept by the handshake throttle (a flood, or an address backing off). */
    handshakesThrottled: number;
    gossipBytesSent: number;
    gossipBytesReceived: number;
    gossipMessagesSent: number;
    gossipMessagesReceived: number;
  };
}

// ---------------------------------------------------------------------------------------------
// The router as the daemon and the API see it (implemented by src/mesh/router.ts).
// ---------------------------------------------------------------------------------------------

export interface RouterInit {
  identity: PeerIdentity;
  /** TCP port we listen on and dial by default (6783). */
  port: number;
  /** Shared secret; undefined = no encryption. */
  password?: string;
  /** Connect to peers learned from gossip (default true). */
  discovery?: boolean;
  /** Most connections we keep (default 100); targets given by the user always count. */
  connLimit?: number;
  /** Initial targets, "host[:port]". */
  peers?: string[];
}

export interface RouterApi {
  readonly mesh: MeshView;
  start(): Promise<void>;
  /** Closes every connection with a goodbye and stops all timers. Idempotent. */
  stop(): Promise<void>;
  /** Adds targets ("host[:port]") and dials them now. Throws ERR_INVALID_ARGUMENT on a bad address. */
  connect(addresses: string[]): void;
  /** Removes targets: no more dialling them; an established connection to them stays. */
  forget(addresses: string[]): void;
  status(): RouterStatus;
  newGossipChannel(name: string, gossiper: Gossiper): GossipChannel;
  /** Session keys and address of an established neighbour, for the data plane. */
  connectionTo(peer: PeerName): ProtocolConnection | undefined;
}
