/**
 * The history of a partition run (test/chaos/partition.ts) and the pure checker that decides pass
 * or fail from it, Jepsen style: every operation is recorded with the wall-clock time it was
 * invoked and the time it completed, and the checker only draws conclusions that hold for every
 * order of events compatible with those intervals. No sleep decides anything: the scenario
 * observes (DNS answers, pings, container listings) until things look settled or a deadline
 * passes, and the checker reads the observations.
 *
 * Operations:
 * - `start` / `stop`: container operations (`loom run`, `loom rm`) on a host; `ok` with the
 *   address the container got, `fail` (the command said no: it did not happen) or `info`
 *   (indeterminate: a time-out; it may or may not have happened).
 * - `partition` / `heal`: the underlay faults.
 * - `listing`: one host's own containers from its router after a heal (`round` groups the hosts'
 *   listings of one observation window).
 * - `dns`: one host's DNS server asked for every name of the run (null: no reply): a round of
 *   the fine prober (dns-prober.ts, every 100 ms per host) or one `dig` with every name.
 * - `ping`: one ordered pair of containers, one echo request.
 *
 * What is checked (each broken invariant is one line in `problems`):
 * (a) addresses: no address handed to a container while another container definitely held it
 *     (holding from the completion of its start to the invocation of its stop, so concurrent
 *     operations never count against it), and in every listing round no two live containers,
 *     on any hosts, share an address; the listings agree with the history (a container whose
 *     start completed and that was never stopped is listed; a stopped one is not).
 * (b) DNS, per heal: every host's answer for every name equals the addresses of the live
 *     containers with that name (`expectedRecords`: from the starts and stops before the heal;
 *     the round's listings decide only containers whose start or stop timed out), from a time
 *     no later than `dnsWithinMs` after the heal completed, until the end of the window: so
 *     every host's answers are identical, and right, within that time.
 * (c) routes, per heal: every ordered pair of live containers in the same subnet answers pings,
 *     from a time no later than `routesWithinMs` after the heal, until the end of the window.
 * Each time is an upper bound (`dnsMs`, `routesMs`; `dnsLowerMs`, `routesLowerMs` are the lower
 * bounds: the invocation of the last wrong answer after the heal, so convergence lies between): the first observation of the final all-correct run of
 * observations, at its completion. Observations whose answer came after the heal count, also
 * when they were asked just before it (a `dig` in flight across the heal): an answer right at
 * one moment and every later one right is what "converged" means; a flap back to wrong after
 * it resets the time.
 */

export type OpResult = { type: 'ok'; address?: string; id?: string } | { type: 'fail'; error: string } | { type: 'info'; error: string };

interface Timed {
  /** Epoch ms when the operation was invoked. */
  invokeMs: number;
  /** Epoch ms when it returned. */
  completeMs: number;
}

export interface StartOp extends Timed {
  op: 'start';
  host: string;
  /** The scenario's label for the container ("c7"); unique in a history. */
  container: string;
  /** Its DNS name (`loom run --name`). */
  name: string;
  /** The static address asked for (a move), or undefined for an IPAM allocation. */
  requested?: string;
  result: OpResult;
}

export interface StopOp extends Timed {
  op: 'stop';
  host: string;
  container: string;
  result: OpResult;
}

export interface PartitionOp extends Timed {
  op: 'partition';
  /** Hosts on each side; with `oneWay` only traffic from sides[0] to sides[1] is dropped. */
  sides: [string[], string[]];
  oneWay: boolean;
}

export interface HealOp extends Timed {
  op: 'heal';
}

export interface ListedContainer {
  /** The daemon's container id. */
  id: string;
  name: string;
  /** "a.b.c.d/n". */
  cidr: string;
}

export interface ListingOp extends Timed {
  op: 'listing';
  round: number;
  host: string;
  containers: ListedContainer[];
}

export interface DnsOp extends Timed {
  op: 'dns';
  host: string;
  /** Name (as asked, lower case, no trailing dot) -> addresses answered; null: the server did not answer. */
  answers: Record<string, string[]> | null;
}

export interface PingOp extends Timed {
  op: 'ping';
  /** Container labels. */
  from: string;
  to: string;
  ok: boolean;
}

export type HistoryOp = StartOp | StopOp | PartitionOp | HealOp | ListingOp | DnsOp | PingOp;

export interface CheckOptions {
  /** DNS identical everywhere and right this long after a heal (issue 12: 2 s). */
  dnsWithinMs: number;
  /** Every pair answering this long after a heal (issue 12: 5 s). */
  routesWithinMs: number;
  /** Printed with every problem, so a failure names its replay. */
  seed?: number;
}

export interface HealFigures {
  /** 1-based heal number. */
  heal: number;
  /** Heal completion -> DNS right on every host (upper bound); null: never within the window. */
  dnsMs: number | null;
  /** Heal completion -> every pair answering (upper bound); null: never within the window. */
  routesMs: number | null;
  /** Lower bounds: heal completion -> invocation of the last wrong DNS answer / failed ping after it (0: none). */
  dnsLowerMs: number;
  routesLowerMs: number;
  containers: number;
  names: number;
  pairs: number;
}

export interface Verdict {
  problems: string[];
  heals: HealFigures[];
  /** Successful starts, stops; failed or indeterminate operations. */
  starts: number;
  stops: number;
  failedOps: number;
}

const INFINITY = Number.POSITIVE_INFINITY;

function ipOf(cidr: string): string {
  return cidr.split('/')[0]!;
}

/** "a.b.c.d/n" -> "network/n", for "same subnet". */
function subnetOf(cidr: string): string {
  const [ip, prefixText] = cidr.split('/');
  const prefix = Number(prefixText);
  const n = ip!.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const block = 2 ** (32 - prefix);
  return `${Math.floor(n / block) * block}/${prefix}`;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => {
  if (a.length !== b.length) return false;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.every((v, i) => v === y[i]);
};

/**
 * The earliest completion among the final run of good observations (those invoked after the
 * last bad one), or null when the last observation is bad (or there is none).
 */
export function settledAt(observations: ReadonlyArray<{ invokeMs: number; completeMs: number; good: boolean }>): number | null {
  const sorted = [...observations].sort((a, b) => a.invokeMs - b.invokeMs);
  let earliest: number | null = null;
  for (const o of sorted) {
    if (!o.good) earliest = null;
    else earliest = Math.min(earliest ?? o.completeMs, o.completeMs);
  }
  return earliest;
}

/**
 * Name -> addresses that DNS must answer after `heal`, from the history of starts and stops
 * (moves are a stop and a start) before it: a container whose start succeeded and that has no
 * stop that may have happened is live; one whose stop succeeded is gone. Containers the history
 * leaves open (a start or a stop that timed out) are taken from the round's listings: one listed
 * there (also by an id the history never learnt, a start that timed out yet happened) is live.
 */
export function expectedRecords(heal: HealOp, starts: readonly StartOp[], stops: readonly StopOp[], round: readonly ListingOp[], names: readonly string[]): Map<string, string[]> {
  const out = new Map<string, Set<string>>(names.map((n) => [n, new Set<string>()]));
  const add = (name: string, address: string): void => {
    const key = name.toLowerCase();
    out.set(key, (out.get(key) ?? new Set()).add(address));
  };
  /** Ids of containers whose start succeeded; those with a stop that timed out are open. */
  const known = new Set<string>();
  const open = new Set<string>();
  for (const s of starts) {
    // A start that timed out has no id: only the listing can tell (below).
    if (s.result.type !== 'ok' || s.result.address === undefined || s.result.id === undefined) continue;
    known.add(s.result.id);
    if (s.invokeMs >= heal.invokeMs) continue;
    const before = stops.filter((t) => t.container === s.container && t.invokeMs < heal.invokeMs && t.result.type !== 'fail');
    if (before.length === 0) add(s.name, s.result.address);
    else if (!before.some((t) => t.result.type === 'ok')) open.add(s.result.id);
  }
  for (const l of round) {
    for (const c of l.containers) if (open.has(c.id) || !known.has(c.id)) add(c.name, ipOf(c.cidr));
  }
  return new Map([...out].map(([n, set]) => [n, [...set].sort()]));
}

export function checkHistory(history: readonly HistoryOp[], options: CheckOptions): Verdict {
  const tag = options.seed === undefined ? '' : ` [seed ${options.seed}]`;
  const problems: string[] = [];
  const starts = history.filter((o): o is StartOp => o.op === 'start');
  const stops = history.filter((o): o is StopOp => o.op === 'stop');
  const labels = new Set<string>();
  for (const s of starts) {
    if (labels.has(s.container)) problems.push(`history: container label ${s.container} started twice${tag}`);
    labels.add(s.container);
  }

  // When each container definitely held its address: from its start's completion to the
  // invocation of its first stop that may have happened (ok or indeterminate).
  const releaseInvoke = (label: string): number => {
    const ends = stops.filter((s) => s.container === label && s.result.type !== 'fail').map((s) => s.invokeMs);
    return ends.length === 0 ? INFINITY : Math.min(...ends);
  };
  const held = starts
    .filter((s) => s.result.type === 'ok' && s.result.address !== undefined)
    .map((s) => ({ start: s, address: (s.result as { address: string }).address, from: s.completeMs, until: releaseInvoke(s.container) }));

  // (a) no allocation while another container definitely held the address.
  for (let i = 0; i < held.length; i++) {
    for (let j = i + 1; j < held.length; j++) {
      const x = held[i]!;
      const y = held[j]!;
      if (x.address !== y.address) continue;
      if (x.from < y.until && y.from < x.until) {
        const [first, second] = x.from <= y.from ? [x, y] : [y, x];
        problems.push(
          `duplicate address ${x.address}: ${second.start.container} on ${second.start.host} got it (start completed ${second.from}) while ${first.start.container} on ${first.start.host} held it (since ${first.from}, ${first.until === INFINITY ? 'never stopped' : `until ${first.until}`})${tag}`,
        );
      }
    }
  }

  // Listing rounds: no shared address among live containers, and agreement with the history.
  const idToLabel = new Map<string, string>();
  for (const s of starts) if (s.result.type === 'ok' && s.result.id !== undefined) idToLabel.set(s.result.id, s.container);
  const listings = history.filter((o): o is ListingOp => o.op === 'listing');
  const rounds = new Map<number, ListingOp[]>();
  for (const l of listings) rounds.set(l.round, [...(rounds.get(l.round) ?? []), l]);
  for (const [round, ls] of rounds) {
    const byAddress = new Map<string, string[]>();
    for (const l of ls) {
      for (const c of l.containers) {
        const ip = ipOf(c.cidr);
        byAddress.set(ip, [...(byAddress.get(ip) ?? []), `${idToLabel.get(c.id) ?? c.id}@${l.host}`]);
      }
    }
    for (const [ip, holders] of byAddress) if (holders.length > 1) problems.push(`listing round ${round}: address ${ip} held by ${holders.length} live containers: ${holders.join(', ')}${tag}`);
    const roundInvoke = Math.min(...ls.map((l) => l.invokeMs));
    const roundComplete = Math.max(...ls.map((l) => l.completeMs));
    for (const s of starts) {
      const listedOn = ls.filter((l) => l.containers.some((c) => s.result.type === 'ok' && c.id === s.result.id)).map((l) => l.host);
      if (s.result.type === 'ok') {
        const stopInvoked = releaseInvoke(s.container);
        const stoppedOk = stops.some((t) => t.container === s.container && t.result.type === 'ok' && t.completeMs < roundInvoke);
        const surelyLive = s.completeMs < roundInvoke && stopInvoked > roundComplete;
        if (surelyLive && !sameSet(listedOn, [s.host])) problems.push(`listing round ${round}: ${s.container} (started on ${s.host}, never stopped) is listed on [${listedOn.join(', ')}]${tag}`);
        if (stoppedOk && listedOn.length > 0) problems.push(`listing round ${round}: ${s.container} was removed but is still listed on ${listedOn.join(', ')}${tag}`);
      }
    }
  }

  // (b) and (c), per heal: the window runs to the next operation that is not an observation.
  const heals: HealFigures[] = [];
  const names = [...new Set(starts.map((s) => s.name.toLowerCase()))].sort();
  const sorted = [...history].sort((a, b) => a.invokeMs - b.invokeMs);
  let healNumber = 0;
  for (const heal of sorted.filter((o): o is HealOp => o.op === 'heal')) {
    healNumber++;
    const next = sorted.find((o) => o.invokeMs > heal.invokeMs && (o.op === 'start' || o.op === 'stop' || o.op === 'partition' || o.op === 'heal'));
    const end = next?.invokeMs ?? INFINITY;
    // An observation counts when its answer came after the heal (it may have been asked just
    // before: a dig or ping in flight across the heal; under load a dig takes a second or two).
    const inWindow = <T extends HistoryOp>(o: T): boolean => o.completeMs >= heal.completeMs && o.invokeMs < end && o.completeMs <= end;
    const round = listings.filter((o) => o.invokeMs >= heal.completeMs && o.completeMs <= end);
    const figure: HealFigures = { heal: healNumber, dnsMs: null, routesMs: null, dnsLowerMs: 0, routesLowerMs: 0, containers: 0, names: names.length, pairs: 0 };
    heals.push(figure);
    if (round.length === 0) {
      problems.push(`heal ${healNumber}: no container listing after it, nothing to check against${tag}`);
      continue;
    }
    const live: Array<ListedContainer & { host: string; label: string }> = round.flatMap((l) => l.containers.map((c) => ({ ...c, host: l.host, label: idToLabel.get(c.id) ?? c.id })));
    figure.containers = live.length;
    const hosts = [...new Set(round.map((l) => l.host))].sort();

    // (b) DNS: what the history says lives at the heal; the listing decides only what the history leaves open.
    const expected = expectedRecords(heal, starts, stops, round, names);
    const dnsOps = history.filter((o): o is DnsOp => o.op === 'dns' && inWindow(o));
    let dnsAt = heal.completeMs;
    for (const host of hosts) {
      const mine = dnsOps.filter((o) => o.host === host);
      if (mine.length === 0) {
        problems.push(`heal ${healNumber}: ${host}'s DNS was never asked after the heal${tag}`);
        dnsAt = INFINITY;
        continue;
      }
      for (const name of names) {
        const want = expected.get(name)!;
        const observed = mine.map((o) => ({ invokeMs: o.invokeMs, completeMs: o.completeMs, good: o.answers !== null && sameSet(o.answers[name] ?? [], want) }));
        for (const o of observed) if (!o.good) figure.dnsLowerMs = Math.max(figure.dnsLowerMs, o.invokeMs - heal.completeMs);
        const at = settledAt(observed);
        if (at === null) {
          const last = [...mine].sort((a, b) => a.invokeMs - b.invokeMs).at(-1)!;
          const got = last.answers === null ? 'no reply' : `[${(last.answers[name] ?? []).join(', ')}]`;
          problems.push(`heal ${healNumber}: ${host} still answers ${name} with ${got} at the end of the window, expected [${want.join(', ')}]${tag}`);
          dnsAt = INFINITY;
        } else dnsAt = Math.max(dnsAt, at);
      }
    }
    if (dnsAt !== INFINITY) {
      figure.dnsMs = Math.max(0, dnsAt - heal.completeMs);
      if (figure.dnsMs > options.dnsWithinMs) problems.push(`heal ${healNumber}: DNS right on every host only ${figure.dnsMs} ms after the heal, limit ${options.dnsWithinMs} ms${tag}`);
    }

    // (c) routes: every ordered pair in one subnet.
    const pingOps = history.filter((o): o is PingOp => o.op === 'ping' && inWindow(o));
    let routesAt = heal.completeMs;
    for (const from of live) {
      for (const to of live) {
        if (from === to || subnetOf(from.cidr) !== subnetOf(to.cidr)) continue;
        figure.pairs++;
        const mine = pingOps.filter((p) => p.from === from.label && p.to === to.label);
        for (const p of mine) if (!p.ok) figure.routesLowerMs = Math.max(figure.routesLowerMs, p.invokeMs - heal.completeMs);
        const at = settledAt(mine.map((p) => ({ invokeMs: p.invokeMs, completeMs: p.completeMs, good: p.ok })));
        if (at === null) {
          problems.push(`heal ${healNumber}: ${from.label}@${from.host} -> ${to.label}@${to.host} (${ipOf(to.cidr)}) ${mine.length === 0 ? 'never pinged' : 'not answering at the end of the window'}${tag}`);
          routesAt = INFINITY;
        } else routesAt = Math.max(routesAt, at);
      }
    }
    if (routesAt !== INFINITY) {
      figure.routesMs = Math.max(0, routesAt - heal.completeMs);
      if (figure.routesMs > options.routesWithinMs) problems.push(`heal ${healNumber}: every pair answering only ${figure.routesMs} ms after the heal, limit ${options.routesWithinMs} ms${tag}`);
    }
  }

  return {
    problems,
    heals,
    starts: starts.filter((s) => s.result.type === 'ok').length,
    stops: stops.filter((s) => s.result.type === 'ok').length,
    failedOps: [...starts, ...stops].filter((s) => s.result.type !== 'ok').length,
  };
}
