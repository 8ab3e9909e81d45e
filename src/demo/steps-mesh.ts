/**
 * Steps 1 and 2: routers on h1..h3 converge to a full mesh; the upstream DNS server on h4 answers
 * the names Loom does not own, and each router's DNS forwards them to it.
 */
import { pollUntil } from './poll.js';
import { indent, showLoom, type DemoStep } from './context.js';
import { UPSTREAM_DOMAIN, startUpstreamDns } from './upstream-dns.js';

export const launchRouters: DemoStep = {
  title: 'Three hosts, a router on each (h1 alone, h2 -> h1, h3 -> h2); watch `loom status` converge',
  async run(ctx) {
    const { lab, cli, say, routers, dnsHost, peerNames } = ctx;
    // Written before launch: `ip netns exec` mounts a host's resolv.conf when the router starts.
    for (const h of routers) lab.setResolvConf(h, `nameserver ${dnsHost.address}\n`);
    say(`  each host's /etc/resolv.conf: nameserver ${dnsHost.address} (the demo's upstream DNS, step 2)`);
    for (const h of routers) {
      const previous = h.index > 1 ? lab.host(h.index - 1) : undefined;
      const args = ['launch', '--nickname', h.name, ...(previous ? [previous.address] : [])];
      say(`  ${h.name}$ loom ${args.join(' ')}`);
      const { name, pid } = await cli.launch(h, { peers: previous ? [previous.address] : [] });
      peerNames.set(h.name, name);
      ctx.result.routerPids.push(pid);
      say(`    peer ${name}, pid ${pid}`);
    }
    const lastShown = new Map<string, string>();
    await pollUntil(
      async () => {
        let converged = true;
        for (const h of routers) {
          const report = await cli.report(h);
          const peers = report.router.peers.length;
          const established = report.router.connections.filter((c) => c.state === 'established').length;
          const summary = `${peers} peers, ${established} established connections`;
          if (lastShown.get(h.name) !== summary) {
            lastShown.set(h.name, summary);
            say(`  ${h.name}: ${summary}`);
          }
          if (peers < routers.length || established < routers.length - 1) converged = false;
        }
        return converged ? true : undefined;
      },
      { what: `every router to see ${routers.length} peers and ${routers.length - 1} connections`, timeoutMs: ctx.convergeTimeoutMs, intervalMs: 300 },
    );
    ctx.result.converged = true;
    await showLoom(ctx, routers[2]!, ['status']);
    say('  converged: every router knows every peer and is connected to both others (h3 found h1 by gossip)');
  },
};

export const upstreamDns: DemoStep = {
  title: `An upstream DNS server on h4 (no router) for the names outside Loom (*.${UPSTREAM_DOMAIN})`,
  async run(ctx) {
    const { lab, cli, say, routers, dnsHost } = ctx;
    const { process } = await startUpstreamDns(lab, dnsHost);
    say(`  ${dnsHost.name}: upstream DNS on ${dnsHost.address}:53, pid ${process.pid}`);
    const direct = await lab.exec(dnsHost, 'dig', ['+short', `@${dnsHost.address}`, `www.${UPSTREAM_DOMAIN}`], { allowFailure: true, timeoutMs: 10_000 });
    say(`  ${dnsHost.name}$ dig +short @${dnsHost.address} www.${UPSTREAM_DOMAIN}`);
    say(indent(direct.stdout || '(no answer)'));
    // Each router serves DNS on its own address on the Loom bridge, once IPAM has given it one.
    const h1 = routers[0]!;
    const server = await pollUntil(
      async () => {
        const hostAddress = (await cli.report(h1))['host-address'];
        return hostAddress?.dns && hostAddress.cidr ? hostAddress.cidr.split('/')[0] : undefined;
      },
      { what: `${h1.name}'s DNS server on the Loom bridge`, timeoutMs: ctx.convergeTimeoutMs, intervalMs: 300 },
    );
    const forwarded = await lab.exec(h1, 'dig', ['+short', '+time=2', '+tries=2', `@${server}`, `www.${UPSTREAM_DOMAIN}`], { allowFailure: true, timeoutMs: 10_000 });
    say(`  ${h1.name}$ dig +short @${server} www.${UPSTREAM_DOMAIN}     # ${h1.name}'s Loom DNS forwards it`);
    say(indent(forwarded.stdout || '(no answer)'));
  },
};
