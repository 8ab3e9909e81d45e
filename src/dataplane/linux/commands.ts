/**
 * Each DataplaneOp as the iproute2 command that performs it (pure), or as a netlink call for what
 * iproute2 6.1 cannot express (vxlan local bypass).
 */
import type { DataplaneOp, FdbEntry } from '../types.js';

export type OpCommand = { kind: 'exec'; cmd: 'ip' | 'bridge'; args: string[] } | { kind: 'netlink-local-bypass'; name: string; enabled: boolean };

function fdbArgs(verb: 'append' | 'replace' | 'del', dev: string, e: FdbEntry): string[] {
  const args = ['fdb', verb, e.mac, 'dev', dev, 'dst', e.dst];
  if (e.port !== null) args.push('port', String(e.port));
  // `self`: the vxlan device's own table, not the bridge's; `permanent`: never aged out.
  if (verb !== 'del') args.push('self', 'permanent');
  else args.push('self');
  return args;
}

export function commandFor(op: DataplaneOp): OpCommand {
  const ip = (...args: string[]): OpCommand => ({ kind: 'exec', cmd: 'ip', args });
  switch (op.op) {
    case 'create-bridge':
      // No multicast snooping: like Weave, multicast floods the segment; a querier in one container must not prune other hosts' receivers.
      return ip('link', 'add', op.name, 'mtu', String(op.mtu), 'type', 'bridge', 'mcast_snooping', '0');
    case 'create-vxlan': {
      const args = ['link', 'add', op.name, 'mtu', String(op.mtu), 'type', 'vxlan', 'id', String(op.vni), 'dstport', String(op.port)];
      if (op.localIp !== null) args.push('local', op.localIp);
      args.push('nolearning');
      return ip(...args);
    }
    case 'delete-link':
      return ip('link', 'del', op.name);
    case 'set-address':
      return ip('link', 'set', op.name, 'address', op.mac);
    case 'set-mtu':
      return ip('link', 'set', op.name, 'mtu', String(op.mtu));
    case 'set-master':
      return ip('link', 'set', op.name, 'master', op.master);
    case 'set-up':
      return ip('link', 'set', op.name, 'up');
    case 'set-local-bypass':
      return { kind: 'netlink-local-bypass', name: op.name, enabled: op.enabled };
    case 'fdb-append':
      return { kind: 'exec', cmd: 'bridge', args: fdbArgs('append', op.dev, op.entry) };
    case 'fdb-replace':
      return { kind: 'exec', cmd: 'bridge', args: fdbArgs('replace', op.dev, op.entry) };
    case 'fdb-delete':
      return { kind: 'exec', cmd: 'bridge', args: fdbArgs('del', op.dev, op.entry) };
    case 'set-isolated':
      return { kind: 'exec', cmd: 'bridge', args: ['link', 'set', 'dev', op.name, 'isolated', op.on ? 'on' : 'off'] };
    case 'set-gso-max-size':
      return ip('link', 'set', op.name, 'gso_max_size', String(op.size));
    case 'bridge-fdb-replace':
      // `master`: the bridge's table, not the port's own; `sticky`: the bridge never moves it to
      // the port a frame with that source arrives on.
      return { kind: 'exec', cmd: 'bridge', args: ['fdb', 'replace', op.entry.mac, 'dev', op.entry.dev, 'master', 'static', 'sticky'] };
    case 'bridge-fdb-delete':
      return { kind: 'exec', cmd: 'bridge', args: ['fdb', 'del', op.entry.mac, 'dev', op.entry.dev, 'master'] };
    default: {
      const never: never = op;
      throw new Error(`unhandled dataplane op ${JSON.stringify(never)}`);
    }
  }
}
