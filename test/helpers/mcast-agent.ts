/**
 * UDP broadcast/multicast sender and receiver for the data-plane e2e tests, run inside a container
 * (`loom exec NAME -- node mcast-agent.js ...`; the container sees the host's files). Not a test
 * file. Every run is bounded in time; the answer is one JSON line on stdout.
 *
 *   receive PORT GROUP IFACE_ADDR N READY_FILE DEADLINE_MS
 *     Binds 0.0.0.0:PORT, joins GROUP on IFACE_ADDR, writes READY_FILE once it listens, and counts
 *     datagrams "b:<seq>" (broadcast) and "m:<seq>" (multicast), seq in 0..N-1. Exits when it has
 *     every seq of both kinds plus a grace period (so a late duplicate is still counted), 5 s after
 *     the first datagram (the sender needs N x 5 ms; what is missing by then is lost), or at
 *     DEADLINE_MS. Answer: ReceiveReport.
 *   send PORT BROADCAST_ADDR GROUP IFACE_ADDR N
 *     Sends "b:0".."b:N-1" to BROADCAST_ADDR:PORT and "m:0".."m:N-1" to GROUP:PORT out of IFACE_ADDR,
 *     5 ms apart. Answer: { sent: 2N }.
 */
import { createSocket, type Socket } from 'node:dgram';
import { writeFileSync } from 'node:fs';

/** Copies received per sequence number, per kind; anything that does not parse is counted apart. */
export interface ReceiveReport {
  broadcast: number[];
  multicast: number[];
  malformed: number;
  /** Stopped by a time bound rather than by having every datagram. */
  timedOut: boolean;
}

const DUPLICATE_GRACE_MS = 500;
const SETTLE_MS = 5000;
const SEND_SPACING_MS = 5;
const MAX_COUNT = 10_000;

function fail(message: string): never {
  process.stderr.write(`mcast-agent: ${message}\n`);
  process.exit(2);
}

function intArg(value: string | undefined, what: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) fail(`bad ${what} ${JSON.stringify(value)}`);
  return n;
}

function bound(socket: Socket, port: number, address?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

async function receive(args: string[]): Promise<ReceiveReport> {
  const [portText, group, ifaceAddr, countText, readyFile, deadlineText] = args;
  const port = intArg(portText, 'port', 65535);
  const count = intArg(countText, 'count', MAX_COUNT);
  const deadlineMs = intArg(deadlineText, 'deadline', 600_000);
  if (!group || !ifaceAddr || !readyFile) fail('usage: receive PORT GROUP IFACE_ADDR N READY_FILE DEADLINE_MS');
  const report: ReceiveReport = { broadcast: new Array<number>(count).fill(0), multicast: new Array<number>(count).fill(0), malformed: 0, timedOut: false };
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  await bound(socket, port);
  socket.addMembership(group, ifaceAddr);
  return new Promise((resolve) => {
    let graceTimer: NodeJS.Timeout | undefined;
    let settleTimer: NodeJS.Timeout | undefined;
    const finish = (timedOut: boolean) => {
      clearTimeout(deadline);
      clearTimeout(graceTimer);
      clearTimeout(settleTimer);
      report.timedOut = timedOut;
      socket.close();
      resolve(report);
    };
    const deadline = setTimeout(() => finish(true), deadlineMs);
    socket.on('message', (msg) => {
      settleTimer ??= setTimeout(() => finish(true), SETTLE_MS);
      const m = /^([bm]):(\d{1,5})$/.exec(msg.toString('latin1'));
      const seq = m ? Number(m[2]) : -1;
      if (!m || seq >= count) {
        report.malformed++;
        return;
      }
      const counts = m[1] === 'b' ? report.broadcast : report.multicast;
      counts[seq] = (counts[seq] ?? 0) + 1;
      if (graceTimer === undefined && report.broadcast.every((c) => c > 0) && report.multicast.every((c) => c > 0)) {
        graceTimer = setTimeout(() => finish(false), DUPLICATE_GRACE_MS);
      }
    });
    writeFileSync(readyFile, `${process.pid}\n`);
  });
}

async function send(args: string[]): Promise<{ sent: number }> {
  const [portText, broadcastAddr, group, ifaceAddr, countText] = args;
  const port = intArg(portText, 'port', 65535);
  const count = intArg(countText, 'count', MAX_COUNT);
  if (!broadcastAddr || !group || !ifaceAddr) fail('usage: send PORT BROADCAST_ADDR GROUP IFACE_ADDR N');
  const socket = createSocket('udp4');
  // Bound to the container's address so the multicast interface and the source are ethwe's.
  await bound(socket, 0, ifaceAddr);
  socket.setBroadcast(true);
  socket.setMulticastInterface(ifaceAddr);
  socket.setMulticastTTL(1);
  const sendOne = (text: string, to: string) =>
    new Promise<void>((resolve, reject) => socket.send(text, port, to, (err) => (err ? reject(err) : resolve())));
  let sent = 0;
  for (let seq = 0; seq < count; seq++) {
    await sendOne(`b:${seq}`, broadcastAddr);
    await sendOne(`m:${seq}`, group);
    sent += 2;
    await new Promise((resolve) => setTimeout(resolve, SEND_SPACING_MS));
  }
  socket.close();
  return { sent };
}

const [mode, ...rest] = process.argv.slice(2);
const work = mode === 'receive' ? receive(rest) : mode === 'send' ? send(rest) : fail(`unknown mode ${JSON.stringify(mode)}`);
work.then(
  (answer) => process.stdout.write(`${JSON.stringify(answer)}\n`),
  (err: unknown) => fail(err instanceof Error ? err.message : String(err)),
);
