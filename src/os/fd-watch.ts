/**
 * Readiness of an arbitrary fd (a TAP device, a UDP socket made through koffi) on the main
 * thread, without libuv reading from it. Node has no public API for this; the one internal it
 * needs is isolated here.
 *
 * Contract (both kinds): `onReadable` runs on the main thread when the fd has data or an error
 * pending. It is level-triggered: the callback must drain the fd (non-blocking reads until
 * EAGAIN, or up to a fair budget) or it is called again at once, and a callback that cannot
 * read (EOF, a dead device) must close the watch or it spins. The watch works on its own `dup()`
 * of the fd (close-on-exec, so the daemon's children, its containers, never inherit it), so the
 * caller keeps its fd (and closes it itself, after `close()` of the watch).
 * While open, a watch keeps the event loop alive, as a socket does.
 *
 * 'pipe' (preferred): a libuv Pipe handle (the internal `pipe_wrap` binding) adopts the dup'd
 * fd, reads into a ZERO-length user buffer and has `onread` set. libuv's uv__read asks for a
 * buffer, gets length 0 and reports UV_ENOBUFS to the read callback without calling read(2),
 * and keeps reading (libuv src/unix/stream.c). Node's CustomBufferJSListener::OnStreamRead
 * (src/stream_base.cc) CHECKs that the buffer is the user buffer (it is: a non-null pointer of
 * length 0) and calls `onread`. So the data stays for us; epoll is level-triggered, so libuv
 * calls again on the next loop turn only if data is left. Nothing runs when idle; one epoll wake
 * per burst. Verified on Node 20.20 (test/unit/os/fd-watch.test.ts). Note that `uv_pipe_open`
 * sets O_NONBLOCK on the file description it shares with the caller's fd.
 *
 * 'poll-thread' (fallback): poll(2) through koffi's async call, i.e. on a thread of libuv's pool,
 * re-armed after each callback. It holds one pool thread for as long as the watch is open
 * (UV_THREADPOOL_SIZE is 4 by default: fs, dns.lookup and crypto share the rest), costs two
 * thread hand-offs per wake, and wakes every POLL_TIMEOUT_MS when idle so that close() frees the
 * dup'd fd within that time (closing an fd another thread is polling is a race).
 */
import { LoomError } from '../core/errors.js';
import { libc, libcError, mmsgCalls } from './libc.js';

export type FdWatchKind = 'pipe' | 'poll-thread';

export interface FdWatch {
  readonly kind: FdWatchKind;
  /** Stops callbacks at once and frees the dup'd fd (poll-thread: within POLL_TIMEOUT_MS). Idempotent. */
  close(): void;
}

export interface FdWatchOptions {
  /** 'pipe' (default) falls back to 'poll-thread' when the pipe binding is missing. */
  prefer?: FdWatchKind;
}

/** How long a 'poll-thread' poll(2) waits: the bound on close() freeing the fd, and 10 idle wakes/s. */
export const POLL_TIMEOUT_MS = 100;

/** libuv's Pipe handle as the internal binding exposes it (StreamBase methods). */
interface PipeHandle {
  open(fd: number): number;
  useUserBuffer(buffer: Uint8Array): void;
  readStart(): number;
  readStop(): number;
  close(callback?: () => void): void;
  onread: () => void;
}
interface PipeBinding {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number };
}

let pipeBindingCache: PipeBinding | null | undefined;

/** The pipe_wrap binding when it has what this module needs; null otherwise. */
function pipeBinding(): PipeBinding | null {
  if (pipeBindingCache !== undefined) return pipeBindingCache;
  try {
    // process.binding is deprecated for userland (DEP0111, silent unless --pending-deprecation) but present in Node 20.
    const binding = (process as unknown as { binding(name: string): PipeBinding }).binding('pipe_wrap');
    const proto = binding.Pipe.prototype as Partial<PipeHandle>;
    pipeBindingCache = typeof proto.useUserBuffer === 'function' && typeof proto.readStart === 'function' ? binding : null;
  } catch {
    pipeBindingCache = null;
  }
  return pipeBindingCache;
}

/** The kinds this process can use, best first. */
export function availableFdWatchKinds(): FdWatchKind[] {
  return pipeBinding() ? ['pipe', 'poll-thread'] : ['poll-thread'];
}

/**
 * Calls `onReadable` (on the main thread) whenever `fd` has data or an error pending; see the
 * contract above. ERR_OS_COMMAND when the fd cannot be dup'd or watched.
 */
export function watchReadable(fd: number, onReadable: () => void, options: FdWatchOptions = {}): FdWatch {
  if (!Number.isInteger(fd) || fd < 0) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid fd ${fd}`);
  const binding = options.prefer === 'poll-thread' ? null : pipeBinding();
  const calls = mmsgCalls();
  const watched = calls.dupCloexec(fd);
  if (watched < 0) throw libcError(`dup(${fd})`);
  try {
    return binding ? new PipeWatch(binding, watched, onReadable) : new PollThreadWatch(watched, onReadable);
  } catch (err) {
    calls.close(watched);
    throw err;
  }
}

/** Any non-null pointer with length 0: libuv then reports UV_ENOBUFS instead of reading. */
const NO_BYTES = Buffer.allocUnsafeSlow(8).subarray(0, 0);

class PipeWatch implements FdWatch {
  readonly kind = 'pipe';
  private handle: PipeHandle | null;

  /** Owns `watched` from here on: the handle closes it (also when open fails, the caller does). */
  constructor(binding: PipeBinding, watched: number, onReadable: () => void) {
    const handle = new binding.Pipe(binding.constants.SOCKET);
    const opened = handle.open(watched);
    if (opened !== 0) throw new LoomError('ERR_OS_COMMAND', `cannot watch fd ${watched} (libuv error ${opened})`);
    handle.useUserBuffer(NO_BYTES);
    // Must return undefined: Node takes any other return value of onread as the next user
    // buffer and asserts that it is one (CustomBufferJSListener::OnStreamRead), aborting the process.
    handle.onread = () => {
      onReadable();
    };
    const started = handle.readStart();
    if (started !== 0) {
      // The handle owns the fd now: closing it closes the fd, so the caller must not.
      handle.close();
      throw new LoomError('ERR_OS_COMMAND', `cannot watch fd ${watched} (libuv error ${started})`);
    }
    this.handle = handle;
  }

  close(): void {
    const handle = this.handle;
    if (!handle) return;
    this.handle = null;
    handle.readStop();
    // uv_close closes the dup'd fd synchronously; the close callback only frees the handle.
    handle.close();
  }
}

const POLLIN = 0x001;
/** struct pollfd: fd i32 @0, events i16 @4, revents i16 @6. */
const POLLFD_BYTES = 8;

type AsyncPoll = ((fds: Buffer, count: number, timeoutMs: number) => number) & {
  async(fds: Buffer, count: number, timeoutMs: number, done: (err: unknown, ready: number) => void): void;
};

let pollCall: AsyncPoll | null = null;
function asyncPoll(): AsyncPoll {
  pollCall ??= libc().func('int poll(void *, unsigned long, int)') as AsyncPoll;
  return pollCall;
}

class PollThreadWatch implements FdWatch {
  readonly kind = 'poll-thread';
  private readonly pollfd = Buffer.alloc(POLLFD_BYTES);
  private readonly poll = asyncPoll();
  private closed = false;
  private polling = false;
  private watched: number;
  private readonly onPolled: (err: unknown, ready: number) => void;

  constructor(watched: number, onReadable: () => void) {
    this.watched = watched;
    this.pollfd.writeInt32LE(watched, 0);
    this.pollfd.writeInt16LE(POLLIN, 4);
    // One closure for the watch's life, not one per wake.
    this.onPolled = (err, ready) => {
      this.polling = false;
      try {
        // -1 (EINTR) or 0 (timeout): just poll again.
        if (!this.closed && !err && ready > 0) onReadable();
      } finally {
        if (this.closed) this.release();
        else this.arm();
      }
    };
    this.arm();
  }

  private arm(): void {
    this.polling = true;
    this.poll.async(this.pollfd, 1, POLL_TIMEOUT_MS, this.onPolled);
  }

  /** Closes the dup'd fd once, when no poll uses it. */
  private release(): void {
    if (this.watched < 0) return;
    mmsgCalls().close(this.watched);
    this.watched = -1;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // A poll in flight still uses the fd: its callback releases it when the poll returns.
    if (!this.polling) this.release();
  }
}
