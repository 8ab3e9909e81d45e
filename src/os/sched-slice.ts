/**
 * The calling thread's scheduler slice (EEVDF custom slices, Linux >= 6.12): sched_setattr with
 * SCHED_OTHER and `sched_runtime` = the slice. A shorter slice does not raise the thread's share of
 * the CPU (its weight, i.e. nice, is unchanged); it gives the thread an earlier deadline, so when it
 * wakes up (a datagram arrived) it preempts a thread that has run longer instead of waiting for
 * that thread's slice to end, and is itself preempted sooner when it runs long. The kernel clamps
 * the value to 0.1..100 ms; older kernels accept it and ignore it.
 *
 * Why it exists: the DNS bench found Loom's DNS tail on a loaded 2-vCPU machine to be time spent
 * runnable, waiting for a CPU (docs/BENCHMARKS.md, "DNS tail"). Only through koffi (glibc 2.36 has
 * no sched_setattr wrapper): x86_64 and arm64 syscall numbers below. Never throws: a reason string
 * when unavailable.
 */
import { isLp64Linux } from './udp-batch.js';

/** sched_setattr / sched_getattr by architecture (asm/unistd_64.h, asm-generic/unistd.h). */
const SYSCALLS: Partial<Record<string, { set: number; get: number }>> = { x64: { set: 314, get: 315 }, arm64: { set: 274, get: 275 } };
/** struct sched_attr, SCHED_ATTR_SIZE_VER1: size u32 @0, policy u32 @4, flags u64 @8, nice s32 @16, priority u32 @20, runtime u64 @24, deadline u64 @32, period u64 @40, util_min/max u32 @48/52. */
const SCHED_ATTR_BYTES = 56;
const RUNTIME_OFFSET = 24;
const SCHED_OTHER = 0;
export const MIN_SLICE_US = 100;
export const MAX_SLICE_US = 100_000;

type Syscall = (number: number, ...args: unknown[]) => number;
let syscallFn: Syscall | null = null;

async function loadSyscall(): Promise<Syscall> {
  if (syscallFn) return syscallFn;
  const { libc } = await import('./libc.js');
  syscallFn = libc().func('long syscall(long, ...)') as Syscall;
  return syscallFn;
}

/**
 * Sets the slice of thread `tid` (0: the calling thread; another needs the right to change it,
 * e.g. root) to `sliceUs` (an integer, MIN_SLICE_US..MAX_SLICE_US) and returns the slice it had,
 * both in µs as the kernel reports them; a reason when it cannot.
 */
export async function setThreadSlice(sliceUs: number, tid = 0): Promise<{ previousUs: number; nowUs: number } | { unavailable: string }> {
  if (!Number.isInteger(sliceUs) || sliceUs < MIN_SLICE_US || sliceUs > MAX_SLICE_US) return { unavailable: `slice must be an integer ${MIN_SLICE_US}..${MAX_SLICE_US} µs` };
  if (!Number.isInteger(tid) || tid < 0) return { unavailable: `bad thread id ${tid}` };
  const numbers = SYSCALLS[process.arch];
  if (!isLp64Linux() || numbers === undefined) return { unavailable: `unsupported platform ${process.platform}/${process.arch}` };
  let syscall: Syscall;
  try {
    syscall = await loadSyscall();
  } catch (err) {
    return { unavailable: `koffi/libc unavailable: ${(err as Error).message}` };
  }
  const attr = Buffer.alloc(SCHED_ATTR_BYTES);
  if (syscall(numbers.get, 'int', tid, 'void *', attr, 'unsigned int', SCHED_ATTR_BYTES, 'unsigned int', 0) !== 0) return { unavailable: 'sched_getattr failed' };
  if (attr.readUInt32LE(4) !== SCHED_OTHER) return { unavailable: 'the thread is not SCHED_OTHER' };
  const previousUs = Number(attr.readBigUInt64LE(RUNTIME_OFFSET) / 1000n);
  attr.writeUInt32LE(SCHED_ATTR_BYTES, 0);
  attr.writeBigUInt64LE(BigInt(sliceUs) * 1000n, RUNTIME_OFFSET);
  if (syscall(numbers.set, 'int', tid, 'void *', attr, 'unsigned int', 0) !== 0) return { unavailable: 'sched_setattr failed' };
  attr.fill(0);
  if (syscall(numbers.get, 'int', tid, 'void *', attr, 'unsigned int', SCHED_ATTR_BYTES, 'unsigned int', 0) !== 0) return { unavailable: 'sched_getattr failed' };
  return { previousUs, nowUs: Number(attr.readBigUInt64LE(RUNTIME_OFFSET) / 1000n) };
}
