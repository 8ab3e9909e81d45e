/**
 * A model of the kernel's bridge/vxlan/FDB behaviour, enough to replay DataplaneOps without root.
 * It refuses what the kernel refuses (creating an existing link, enslaving to a missing bridge,
 * deleting a missing FDB entry), so a plan that only works by luck fails here too.
 */
import { fdbKey, type CurrentDataplane, type CurrentLink, type DataplaneOp, type FdbEntry } from '../../../src/dataplane/index.js';

export class KernelModel {
  links = new Map<string, CurrentLink>();
  fdb: FdbEntry[] = [];
  vxlanName: string | null = null;

  snapshot(): CurrentDataplane {
    const links = new Map<string, CurrentLink>();
    for (const [k, v] of this.links) links.set(k, { ...v, vxlan: v.vxlan ? { ...v.vxlan } : null });
    return { links, fdb: this.fdb.map((e) => ({ ...e })) };
  }

  private need(name: string): CurrentLink {
    const link = this.links.get(name);
    if (!link) throw new Error(`model: no link ${name}`);
    return link;
  }

  apply(ops: readonly DataplaneOp[]): void {
    for (const op of ops) this.applyOne(op);
  }

  private applyOne(op: DataplaneOp): void {
    switch (op.op) {
      case 'create-bridge':
      case 'create-vxlan':
        if (this.links.has(op.name)) throw new Error(`model: ${op.name} exists`);
        this.links.set(op.name, {
          name: op.name,
          kind: op.op === 'create-bridge' ? 'bridge' : 'vxlan',
          mtu: op.mtu,
          up: false,
          master: null,
          vxlan: op.op === 'create-vxlan' ? { vni: op.vni, port: op.port, localIp: op.localIp, learning: false, localBypass: true } : null,
        });
        if (op.op === 'create-vxlan') {
          this.vxlanName = op.name;
          this.fdb = [];
        }
        return;
      case 'delete-link':
        this.need(op.name);
        this.links.delete(op.name);
        for (const l of this.links.values()) if (l.master === op.name) l.master = null;
        if (this.vxlanName === op.name) this.fdb = [];
        return;
      case 'set-mtu':
        this.need(op.name).mtu = op.mtu;
        return;
      case 'set-master':
        if (this.need(op.master).kind !== 'bridge') throw new Error('model: master is not a bridge');
        this.need(op.name).master = op.master;
        return;
      case 'set-up':
        this.need(op.name).up = true;
        return;
      case 'set-local-bypass': {
        const v = this.need(op.name).vxlan;
        if (!v) throw new Error('model: not vxlan');
        v.localBypass = op.enabled;
        return;
      }
      case 'fdb-append':
        this.needVxlan(op.dev);
        if (this.fdb.some((e) => fdbKey(e) === fdbKey(op.entry))) throw new Error('model: fdb entry exists');
        this.fdb.push({ ...op.entry });
        return;
      case 'fdb-replace': {
        this.needVxlan(op.dev);
        const i = this.fdb.findIndex((e) => e.mac === op.entry.mac);
        if (i >= 0) this.fdb[i] = { ...op.entry };
        else this.fdb.push({ ...op.entry });
        return;
      }
      case 'fdb-delete': {
        this.needVxlan(op.dev);
        const i = this.fdb.findIndex((e) => fdbKey(e) === fdbKey(op.entry));
        if (i < 0) throw new Error('model: no such fdb entry');
        this.fdb.splice(i, 1);
        return;
      }
    }
  }

  private needVxlan(dev: string): void {
    if (this.need(dev).kind !== 'vxlan') throw new Error('model: fdb on a non-vxlan device');
  }
}
