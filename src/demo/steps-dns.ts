/**
 * Step 6: service1 on h1 keeps pinging `service2` by name while service2 is killed on h2 (kill -9
 * of the PID `loom ps` shows) and started again on h3 with a new address from IPAM. The pinging
 * loop runs inside service1 and stops by itself after three replies from the new address (or after
 * LOOP_ROUNDS rounds); its output goes to a file the demo watches.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../core/errors.js';
import { pollUntil, within } from './poll.js';
import { containerNamed, indent, showLoom, type DemoStep } from './context.js';
import { UPSTREAM_DOMAIN } from './upstream-dns.js';

const LOOP_ROUNDS = 150;
/**
 * One line per round: "HH:MM:SS.s ADDRESS reply", "HH:MM:SS.s ADDRESS no reply" or
 * "HH:MM:SS.s - <ping's error>" (the name did not resolve). A constant
 * script; the name is its first argument ("$1"), never spliced in.
 */
const PING_LOOP = `
first=""; streak=0; n=0
while [ $n -lt ${LOOP_ROUNDS} ]; do
  n=$((n+1))
  out=$(ping -c 1 -W 1 "$1" 2>&1); rc=$?
  addr=$(printf '%s\\n' "$out" | sed -n '1s/^PING [^ ]* (\\([0-9.]*\\)).*/\\1/p')
  if [ $rc -eq 0 ]; then
    echo "$(date +%T.%1N) $addr reply"
    [ -z "$first" ] && first=$addr
    if [ "$addr" != "$first" ]; then streak=$((streak+1)); [ $streak -ge 3 ] && exit 0; fi
  elif [ -n "$addr" ]; then
    echo "$(date +%T.%1N) $addr no reply"
  else
    echo "$(date +%T.%1N) - $(printf '%s\\n' "$out" | tail -n 1)"
  fi
  sleep 0.2
done
exit 1
`;

interface Round {
  time: string;
  /** The address that answered, or null (no reply, or the name did not resolve). */
  address: string | null;
  text: string;
}

export function parseRounds(log: string): Round[] {
  const rounds: Round[] = [];
  for (const line of log.split('\n')) {
    const m = /^(\d\d:\d\d:\d\d\.\d) (\S+) (.*)$/.exec(line.trim());
    if (!m) continue;
    const address = m[2] !== '-' && m[3] === 'reply' ? m[2]! : null;
    rounds.push({ time: m[1]!, address, text: m[2] === '-' ? m[3]! : `${m[2]!} ${m[3]!}` });
  }
  return rounds;
}

/** Runs of identical outcomes, one line each: "12:00:01.2 .. 12:00:02.9  10.32.0.5 reply (x8)". */
export function summarizeRounds(rounds: readonly Round[]): string[] {
  const lines: string[] = [];
  let i = 0;
  while (i < rounds.length) {
    let j = i;
    while (j + 1 < rounds.length && rounds[j + 1]!.text === rounds[i]!.text) j++;
    lines.push(`${rounds[i]!.time} .. ${rounds[j]!.time}  ${rounds[i]!.text} (x${j - i + 1})`);
    i = j + 1;
  }
  return lines;
}

function readRounds(file: string): Round[] {
  return existsSync(file) ? parseRounds(readFileSync(file, 'utf8')) : [];
}

export const serviceMoves: DemoStep = {
  title: 'DNS: service1 keeps pinging `service2` by name while service2 dies on h2 and comes back on h3',
  async run(ctx) {
    const { lab, cli, say, routers } = ctx;
    const [h1, h2, h3] = routers as [typeof routers[0], typeof routers[0], typeof routers[0]];
    const service1 = await containerNamed(ctx, h1, 'service1');
    const oldService2 = await containerNamed(ctx, h2, 'service2');
    const logFile = join(lab.workDir, 'service1-pings.log');
    say(`  ${h1.name}$ loom exec service1 -- sh -c '<ping service2 every 0.2 s, print the address>'`);
    const loop = lab.start(h1, cli.bin, ['exec', service1.name, '--', 'sh', '-c', PING_LOOP, 'ping-loop', 'service2'], { logFile, env: { LOOM_STATE_DIR: cli.stateDir(h1) } });
    await pollUntil(async () => (readRounds(logFile).filter((r) => r.address === oldService2.ip).length >= 3 ? true : undefined), {
      what: 'service1 to reach service2 by name',
      timeoutMs: 15_000,
      intervalMs: 100,
    }).catch((err: unknown) => {
      say(indent(existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '(the loop printed nothing)'));
      throw err;
    });
    say(`  service1 resolves service2 to ${oldService2.ip} (on h2) and gets replies`);

    await showLoom(ctx, h2, ['ps']);
    say(`  ${h2.name}$ kill -9 ${oldService2.pid}     # service2's PID from loom ps`);
    process.kill(oldService2.pid, 'SIGKILL');
    await pollUntil(async () => ((await cli.run(h1, ['dns-lookup', 'service2'], { allowFailure: true })).stdout.trim() === '' ? true : undefined), {
      what: 'the name service2 to go from h1',
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    await showLoom(ctx, h1, ['dns-lookup', 'service2'], { allowFailure: true });
    say('    (no address: the name went with the container)');

    await showLoom(ctx, h3, ['run', '--name', 'service2', '--', 'sleep', '3600'], { timeoutMs: 60_000 });
    const newService2 = await containerNamed(ctx, h3, 'service2');
    await pollUntil(async () => ((await cli.run(h1, ['dns-lookup', 'service2'], { allowFailure: true })).stdout.trim() === newService2.ip ? true : undefined), {
      what: `h1 to resolve service2 to ${newService2.ip}`,
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    await showLoom(ctx, h1, ['dns-lookup', 'service2']);

    const exit = await within(loop.exited, 30_000, 'three replies from the new service2').catch(() => 'no end' as const);
    const rounds = readRounds(logFile);
    say(`  what service1 saw, pinging service2 by name (${rounds.length} rounds):`);
    say(indent(summarizeRounds(rounds).join('\n')));
    if (exit !== 0) throw new LoomError('ERR_TIMEOUT', `service1 never got three replies from service2 at ${newService2.ip} (loop ended with ${String(exit)})`);
    const replied = rounds.filter((r) => r.address !== null);
    const before = replied[0]?.address ?? null;
    const after = replied[replied.length - 1]?.address ?? null;
    const firstNew = rounds.findIndex((r) => r.address !== null && r.address !== before);
    const lastOld = rounds.findLastIndex((r) => r.address === before);
    ctx.result.service2 = { before, after, roundsWithoutReply: Math.max(0, firstNew - lastOld - 1) };
    say(`  service2 moved: ${ctx.result.service2.before} (h2) -> ${ctx.result.service2.after} (h3); service1 found it by name`);

    await showLoom(ctx, h1, ['exec', 'service1', '--', 'getent', 'hosts', 'service2']);
    await showLoom(ctx, h1, ['exec', 'service1', '--', 'getent', 'hosts', `www.${UPSTREAM_DOMAIN}`], { allowFailure: true });
    say('    (a name outside Loom: forwarded to the upstream on h4)');
  },
};

