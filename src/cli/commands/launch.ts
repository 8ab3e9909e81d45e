import type { RawLaunchOptions } from '../../daemon/options.js';
import { DEFAULT_CONN_LIMIT } from '../../daemon/defaults.js';
import { DEFAULT_API_SOCKET, DEFAULT_PORT } from '../../core/endpoints.js';
import { DEFAULT_IPALLOC_RANGE } from '../../core/net.js';
import { DEFAULT_DNS_TTL_SECONDS } from '../../dns/daemon-options.js';
import { DEFAULT_DOMAIN } from '../../dns/names.js';
import { FASTDP_MTU, SEALED_MTU } from '../../dataplane/controller/settings.js';
import type { CliCommand } from '../command.js';

export const launchCommand: CliCommand = {
  register(program, ctx) {
    program
      .command('launch')
      .description('start the router in this network namespace; prints its peer name once ready')
      .argument('[peers...]', 'peers to connect to, host[:port]')
      .option('--foreground', 'run in the foreground, logging JSON to stdout (systemd, DaemonSet)')
      .option('--port <port>', `TCP port for peer connections (default ${DEFAULT_PORT})`)
      .option('--name <peername>', 'peer name (default: generated once, kept in the state dir)')
      .option('--nickname <nickname>', 'nickname shown beside the peer name (default: host name)')
      .option('--password <password>', 'encrypt and authenticate peer connections (env LOOM_PASSWORD)')
      .option('--no-discovery', 'do not connect to peers learned from other peers')
      .option('--conn-limit <n>', `most peer connections to keep (default ${DEFAULT_CONN_LIMIT})`)
      .option('--state-dir <dir>', 'where the peer name, pid file and log live (env LOOM_STATE_DIR, default /var/lib/loom)')
      .option('--http-addr <addr>', 'address of the read-only TCP API: GET status, report, metrics (env LOOM_HTTP_ADDR, default 127.0.0.1:6784)')
      .option('--api-socket <name>', `abstract unix socket of the whole API, root only, private to this network namespace (env LOOM_API_SOCKET, default ${DEFAULT_API_SOCKET})`)
      .option('--log-level <level>', 'daemon log level: debug, info, warn or error (env LOOM_LOG_LEVEL, default info)')
      .option('--no-dns', 'no DNS for container names')
      .option('--dns-listen-address <addr[,addr]>', 'serve DNS (UDP+TCP 53) on these IPv4 addresses (default: the bridge address, once the data plane has one)')
      .option('--dns-domain <domain>', `domain of container names (default ${DEFAULT_DOMAIN}.)`)
      .option('--dns-ttl <seconds>', `TTL of DNS answers (default ${DEFAULT_DNS_TTL_SECONDS})`)
      .option('--ipalloc-range <cidr>', `range of container addresses; the same on every peer (default ${DEFAULT_IPALLOC_RANGE})`)
      .option('--ipalloc-default-subnet <cidr>', 'subnet of the range used when none is asked for (default: the whole range)')
      .option('--ipalloc-init <mode>', 'how this peer gets its first space: consensus[=N] (default; N = peers given + 1), seed=NAME,... or observer')
      .option('--dataplane <mode>', 'kernel data plane and relay: on, off or auto (default auto: on, unless not root; env LOOM_DATAPLANE)')
      .option('--mtu <n>', `MTU of the container segment, the same on every peer (default ${FASTDP_MTU}, or ${SEALED_MTU} with --password: what kernel VXLAN, or the sealed relay, carries on a 1500-byte underlay; env LOOM_MTU)`)
      .option('--no-fastdp', 'never use kernel VXLAN: every peer through the user-space relay')
      .option('--no-masq', 'do not masquerade what containers send outside the Loom range (the host still forwards it)')
      .option('--trusted-subnets <cidr,...>', 'with --password, peers in these underlay subnets use kernel VXLAN, unencrypted')
      .option('--dns-resolv-conf <file>', 'upstream resolvers for other names (default /etc/resolv.conf; /etc/netns/NS/resolv.conf in a named namespace NS)')
      .option('--kube-peers', 'find peers from the Kubernetes API (in-cluster service account, or --kube-api) and reclaim deleted nodes\' address space')
      .option('--kube-api <url>', 'Kubernetes API server, http(s)://host[:port] (default in a pod: KUBERNETES_SERVICE_HOST/PORT)')
      .option('--kube-token-file <file>', 'bearer token file (default in a pod: the service-account token)')
      .option('--kube-ca-file <file>', 'CA bundle of the API server (default in a pod: the service-account CA)')
      .option('--kube-node-name <name>', 'this host\'s Node name (env NODE_NAME)')
      .option('--kube-namespace <ns>', 'namespace of the peer ConfigMap (env POD_NAMESPACE, default kube-system)')
      .option('--kube-configmap <name>', 'name of the peer ConfigMap (default loom-peers)')
      .option('--no-kube-reclaim', 'do not reclaim the address space of deleted nodes')
      .option('--no-docker', 'do not serve Docker (network and IPAM driver "loom", loom attach of Docker containers)')
      .option('--docker-api <url>', 'the Docker daemon to serve: unix:///path or tcp://host:port (default unix:///var/run/docker.sock)')
      .option('--docker-plugin-dir <dir>', 'where Docker looks for plugin sockets (default /run/docker/plugins)')
      .action(async (peers: string[], opts: RawLaunchOptions & { foreground?: boolean }) => {
        // The daemon's modules (options with zod, HTTP server, metrics, pino, the mesh) load only
        // for launch --foreground: from the daemon bundle when bin/loom runs (scripts/build-cli.mjs).
        if (opts.foreground) {
          const daemon = await import('../../daemon/entry.js');
          const config = daemon.parseLaunchOptions(opts, peers, ctx.env);
          const logger = daemon.createDaemonLogger({ level: config.logLevel });
          const quietGc = daemon.parseQuietGcSetting(ctx.env['LOOM_QUIET_GC']);
          const stopTuning = daemon.tuneProcessMemory(ctx.env);
          let stopQuietGc = (): void => {};
          try {
            // The hot commands of the native `loom` front run here (native/loom.c, ../in-process.ts).
            const running = await daemon.startDaemon({ logger, createRouter: await ctx.loadRouterFactory(), ...(ctx.cliExec ? { cliExec: ctx.cliExec } : {}) }, config);
            // Memory back after churn, once the router is quiet (src/daemon/quiet-gc.ts); LOOM_QUIET_GC=off turns it off.
            const cancelTrim = daemon.trimAfterStartup();
            if (quietGc !== 'off') stopQuietGc = daemon.startQuietGc(running.api, logger, quietGc);
            await daemon.runUntilStopped(running, logger);
            cancelTrim();
          } finally {
            stopQuietGc();
            stopTuning();
          }
          logger.flush();
          return;
        }
        // The option parsers (zod) load only for launch, not for `loom --help`.
        const { parseLaunchOptions } = await import('../../daemon/options.js');
        const config = parseLaunchOptions(opts, peers, ctx.env);
        const { launchInBackground } = await import('../../daemon/background.js');
        const launched = await launchInBackground(config, { node: ctx.node, entry: ctx.entry, env: ctx.env });
        ctx.out(`${launched.name}\n`);
      });
  },
};
