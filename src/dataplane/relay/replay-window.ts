/**
 * Anti-replay for one (neighbour, direction): the highest counter seen and a 2048-bit sliding
 * bitmap of the counters below it (RFC 6479: the bitmap is a ring of 32-bit words, so sliding
 * clears words instead of shifting bits). `check` before opening (cheap reject), `accept` only
 * after the packet authenticated, so forged packets cannot move the window.
 */
const WORDS = 64;
const WORD_BITS = 32;
/** Counters this far below the highest are still judged exactly; the last word is the slack of the ring. */
export const REPLAY_WINDOW_BITS = (WORDS - 1) * WORD_BITS;

export const ReplayVerdict = { fresh: 0, replayed: 1, tooOld: 2 } as const;
export type ReplayVerdict = (typeof ReplayVerdict)[keyof typeof ReplayVerdict];

export class ReplayWindow {
  private readonly words = new Uint32Array(WORDS);
  /** Highest accepted counter; -1 before the first. */
  private top = -1;

  check(counter: number): ReplayVerdict {
    if (counter > this.top) return ReplayVerdict.fresh;
    if (this.top - counter >= REPLAY_WINDOW_BITS) return ReplayVerdict.tooOld;
    const word = Math.floor(counter / WORD_BITS) % WORDS;
    return (this.words[word]! & (1 << counter % WORD_BITS)) !== 0 ? ReplayVerdict.replayed : ReplayVerdict.fresh;
  }

  /** Records `counter`; call only after `check` said fresh and the packet authenticated. */
  accept(counter: number): void {
    const wordIndex = Math.floor(counter / WORD_BITS);
    if (counter > this.top) {
      const topWord = this.top < 0 ? -1 : Math.floor(this.top / WORD_BITS);
      const clear = Math.min(wordIndex - topWord, WORDS);
      for (let i = 1; i <= clear; i++) this.words[(topWord + i + WORDS) % WORDS] = 0;
      this.top = counter;
    }
    this.words[wordIndex % WORDS]! |= 1 << counter % WORD_BITS;
  }
}
