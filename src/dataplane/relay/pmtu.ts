/**
 * Path MTU discovery for one neighbour, as tinc and Weave's sleeve do it: every relay datagram
 * goes out with DF (the data socket uses IP_PMTUDISC_DO), so the underlay never fragments ours;
 * the largest size that gets through is found with padded probes the neighbour acknowledges.
 *
 * Sizes here are IPv4 packet sizes on the underlay (20 IP + 8 UDP + the relay datagram).
 *
 *   verified  the largest probe size the neighbour acknowledged (0: none yet)
 *   ceiling   the smallest size known not to pass: refused locally with EMSGSIZE (certain) or
 *             lost FAILURES_TO_LOWER times in a row while smaller probes got through
 *
 * Pure state, no I/O, no timers: the relay's prober asks `probeSizes()` each round, reports
 * `acknowledged`, `lost` and `refused`, and sends data at `current()`. Before anything is known
 * `current()` is FALLBACK_MTU, which every IPv6-capable underlay carries, so a new neighbour is
 * never black-holed while discovery runs (it finishes within a probe round trip on a clean path).
 */

/** Used before any probe came back: the IPv6 minimum MTU, below which almost no underlay goes. */
export const FALLBACK_MTU = 1280;
/** No underlay is assumed to carry more (jumbo frames are 9000; the IPv4 limit is 65535). */
export const MAX_PROBED_MTU = 9000;
/** The smallest size probed or used: IPv4's minimum reassembly size. */
export const MIN_MTU = 576;
/** Discovery stops when the gap between verified and ceiling is this small. */
const RESOLUTION = 8;
/** Consecutive losses of a size (while smaller ones pass) before it counts as too big: 1 % loss must not lower the MTU. */
export const FAILURES_TO_LOWER = 3;
/** Sizes worth trying first: common underlay MTUs (Ethernet, PPPoE, VPNs, IPv6 tunnels, jumbo). */
const LADDER = [9000, 1500, 1492, 1480, 1460, 1450, 1440, 1420, 1400, 1380, 1350, 1300, 1280, 1200, 1024, MIN_MTU];

export class PathMtu {
  private verified = 0;
  private ceiling: number;
  /** Consecutive losses per probed size since its last success (sizes above `verified` only). */
  private readonly losses = new Map<number, number>();

  /** `limit`: the largest size this host could send at all (its underlay interface MTU), when known. */
  constructor(limit = MAX_PROBED_MTU + 1) {
    this.ceiling = Math.max(MIN_MTU + 1, Math.min(limit, MAX_PROBED_MTU + 1));
  }

  /** The size to send at now. */
  current(): number {
    return this.verified > 0 ? this.verified : Math.min(FALLBACK_MTU, this.ceiling - 1);
  }

  /** Whether a probe has confirmed `current()`. */
  isVerified(): boolean {
    return this.verified > 0;
  }

  /** Discovery has converged: nothing between verified and ceiling is worth probing. */
  isSettled(): boolean {
    return this.verified > 0 && this.ceiling - this.verified <= RESOLUTION;
  }

  /**
   * The sizes to probe this round, largest first: while unsettled the ladder's sizes in the gap
   * plus its midpoint; once settled, the verified size again (is the path still as big?) and the
   * ceiling when it was only inferred from losses (has the path grown?).
   */
  probeSizes(): number[] {
    const lo = this.verified;
    const hi = this.ceiling;
    if (this.isSettled()) return hi <= MAX_PROBED_MTU ? [hi, lo] : [lo];
    const sizes = new Set<number>();
    for (const s of LADDER) if (s > lo && s < hi) sizes.add(s);
    if (lo > 0) {
      // Three points across the gap: losses need FAILURES_TO_LOWER rounds to count, so each
      // round narrows the search in parallel rather than one halving at a time.
      for (const q of [0.25, 0.5, 0.75]) {
        const s = Math.floor(lo + (hi - lo) * q);
        if (s > lo && s < hi) sizes.add(s);
      }
    }
    if (hi - 1 > lo && hi - 1 <= MAX_PROBED_MTU) sizes.add(hi - 1);
    if (sizes.size === 0 && lo > 0) sizes.add(lo);
    return [...sizes].sort((a, b) => b - a);
  }

  /** A probe of `size` was answered: the path carries it. */
  acknowledged(size: number): void {
    if (size < MIN_MTU || size > MAX_PROBED_MTU) return;
    this.losses.delete(size);
    if (size > this.verified) this.verified = size;
    if (size >= this.ceiling) this.ceiling = size + 1;
    for (const s of this.losses.keys()) if (s <= size) this.losses.delete(s);
  }

  /**
   * A probe of `size` got no answer. After FAILURES_TO_LOWER losses in a row it is the new
   * ceiling; when that is at or below `verified` the path shrank: verified is forgotten (data
   * falls back to FALLBACK_MTU or below) and discovery starts again under the new ceiling.
   * Returns true when current() changed.
   */
  lost(size: number): boolean {
    const count = (this.losses.get(size) ?? 0) + 1;
    this.losses.set(size, count);
    if (count < FAILURES_TO_LOWER || size >= this.ceiling) return false;
    return this.lower(size);
  }

  /** The local stack refused to send `size` with DF (EMSGSIZE): certain, takes effect at once. Returns true when current() changed. */
  refused(size: number): boolean {
    if (size >= this.ceiling) return false;
    return this.lower(size);
  }

  private lower(size: number): boolean {
    const before = this.current();
    this.ceiling = Math.max(MIN_MTU + 1, size);
    if (this.verified >= this.ceiling) this.verified = 0;
    for (const s of this.losses.keys()) if (s >= this.ceiling) this.losses.delete(s);
    return this.current() !== before;
  }

  snapshot(): { mtu: number; verified: boolean; ceiling: number | null } {
    return { mtu: this.current(), verified: this.verified > 0, ceiling: this.ceiling <= MAX_PROBED_MTU ? this.ceiling : null };
  }
}
