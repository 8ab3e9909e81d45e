/**
 * The partition scenario's fine DNS probe (test/chaos/partition.ts): one long-lived process per
 * lab host that asks the host's DNS server for every watched name every `intervalMs` (100 ms in
 * the scenario) and writes one JSON line per round, `{invokeMs, completeMs, answers}`, the shape
 * of a `dns` operation of the history (history.ts). It replaces a `dig` per round, whose process
 * start-up (0.8-1.4 s on a quiet 2-vCPU machine) was coarser than the 2 s the checker decides on.
 *
 * A round sends one A query per name (ids from a counter, one UDP socket) at once and completes
 * when every name has a reply or `roundTimeoutMs` passed. `answers` is name -> addresses (NOERROR
 * and NXDOMAIN both say what the server holds; NXDOMAIN is the empty set), or null when some
 * name got no reply within 1 s, or a reply that says nothing about the name (SERVFAIL, REFUSED,
 * garbage).
 * The next round starts `intervalMs` after the previous one started, or at once if it ran longer.
 *
 * Times are `performance.timeOrigin + performance.now()`: monotonic within the process, and on
 * the epoch scale of the scenario's `Date.now()` (the origin is read from the wall clock when the
 * process starts, seconds before the heal it measures; the two drift only if the clock is
 * stepped meanwhile).
 *
 * Bounded: stops after `maxRounds` rounds or at `deadlineMs` (epoch), whichever comes first, and
 * the scenario kills it by PID when its window ends. Run:
 *   node dns-prober.js <server IPv4> <port> <deadline epoch ms> <interval ms> <max rounds> <domain> <name>...
 */
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as dnsPacket from 'dns-packet';

export interface ProbeOptions {
  server: string;
  port: number;
  /** Short names ("web"); each is asked as `${name}.${domain}`. */
  names: readonly string[];
  domain: string;
  intervalMs: number;
  /** A round with a name still unanswered this long after it started is recorded as null. */
  roundTimeoutMs: number;
  /** Epoch ms after which no round starts. */
  deadlineMs: number;
  maxRounds: number;
}

export interface ProbeRound {
  invokeMs: number;
  completeMs: number;
  answers: Record<string, string[]> | null;
}

/** Epoch-scaled monotonic milliseconds. */
export function probeNow(): number {
  return performance.timeOrigin + performance.now();
}

const RCODE_NOERROR = 0;
const RCODE_NXDOMAIN = 3;

/**
 * One reply to a query for `fqdn`: the addresses it gives (sorted), or null when it says nothing
 * about the name (an error rcode, a different question, undecodable).
 */
export function addressesOfReply(reply: Buffer, fqdn: string): string[] | null {
  if (reply.length < 12) return null;
  const rcode = reply.readUInt16BE(2) & 0x000f;
  if (rcode !== RCODE_NOERROR && rcode !== RCODE_NXDOMAIN) return null;
  let packet: dnsPacket.Packet;
  try {
    packet = dnsPacket.decode(reply);
  } catch {
    return null;
  }
  const want = fqdn.toLowerCase();
  if (packet.questions?.[0]?.name.toLowerCase() !== want) return null;
  const out: string[] = [];
  for (const a of packet.answers ?? []) if (a.type === 'A' && a.name.toLowerCase() === want) out.push(a.data);
  return out.sort();
}

/**
 * Probes until the deadline or `maxRounds`, calling `onRound` after each round. Resolves with
 * the number of rounds. The socket is closed on return; nothing else is left behind.
 */
export async function probe(options: ProbeOptions, onRound: (round: ProbeRound) => void): Promise<number> {
  const socket = createSocket('udp4');
  /** Query id -> the name it asked, for the round in flight. */
  const pending = new Map<number, string>();
  let answers = new Map<string, string[] | null>();
  let roundDone: (() => void) | null = null;
  let nextId = Math.floor(Math.random() * 0x10000);
  socket.on('message', (msg) => {
    if (msg.length < 2) return;
    const name = pending.get(msg.readUInt16BE(0));
    if (name === undefined) return; // a late reply to an earlier round
    pending.delete(msg.readUInt16BE(0));
    answers.set(name, addressesOfReply(msg, `${name}.${options.domain}`));
    if (pending.size === 0) roundDone?.();
  });
  socket.on('error', () => undefined); // ICMP unreachable and the like: the round times out
  await new Promise<void>((resolve) => socket.bind(0, resolve));
  let rounds = 0;
  try {
    while (rounds < options.maxRounds && Date.now() < options.deadlineMs) {
      const startedAt = probeNow();
      // Whole ms, widened outwards: the round lies inside [invokeMs, completeMs].
      const invokeMs = Math.floor(startedAt);
      pending.clear();
      answers = new Map();
      const finished = new Promise<void>((resolve) => {
        roundDone = resolve;
        setTimeout(resolve, options.roundTimeoutMs).unref();
      });
      for (const name of options.names) {
        const id = nextId;
        nextId = (nextId + 1) & 0xffff;
        pending.set(id, name);
        const query = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: `${name}.${options.domain}`, class: 'IN' }] });
        socket.send(query, options.port, options.server);
      }
      await finished;
      roundDone = null;
      const completeMs = Math.ceil(probeNow());
      const complete = options.names.every((n) => answers.get(n) != null);
      onRound({ invokeMs, completeMs, answers: complete ? Object.fromEntries(options.names.map((n) => [n, answers.get(n)!])) : null });
      rounds++;
      const wait = startedAt + options.intervalMs - probeNow();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  } finally {
    socket.close();
  }
  return rounds;
}

const USAGE = 'usage: dns-prober <server IPv4> <port> <deadline epoch ms> <interval ms> <max rounds> <domain> <name>...\n';

/** The command line, validated: every field bounded, names plain labels. */
export function parseProberArgs(argv: readonly string[]): ProbeOptions | string {
  const [server, port, deadline, interval, rounds, domain, ...names] = argv;
  const int = (s: string | undefined, min: number, max: number): number | null => {
    const n = Number(s);
    return s !== undefined && /^\d+$/.test(s) && n >= min && n <= max ? n : null;
  };
  if (server === undefined || !/^\d{1,3}(\.\d{1,3}){3}$/.test(server)) return `bad server address\n${USAGE}`;
  const p = int(port, 1, 65_535);
  const d = int(deadline, 1, Number.MAX_SAFE_INTEGER);
  const i = int(interval, 10, 60_000);
  const r = int(rounds, 1, 100_000);
  if (p === null || d === null || i === null || r === null) return `bad port, deadline, interval (10..60000) or rounds (1..100000)\n${USAGE}`;
  if (domain === undefined || !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(domain)) return `bad domain\n${USAGE}`;
  if (names.length === 0 || names.length > 256 || names.some((n) => !/^[a-z0-9-]{1,63}$/i.test(n))) return `1..256 names, each one label\n${USAGE}`;
  return { server, port: p, deadlineMs: d, intervalMs: i, maxRounds: r, domain, names: names.map((n) => n.toLowerCase()), roundTimeoutMs: Math.max(1_000, i) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const parsed = parseProberArgs(process.argv.slice(2));
  if (typeof parsed === 'string') {
    process.stderr.write(parsed);
    process.exit(2);
  }
  await probe(parsed, (round) => process.stdout.write(`${JSON.stringify(round)}\n`));
}
