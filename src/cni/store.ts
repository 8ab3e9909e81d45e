/**
 * CNI attachments in STATE_DIR/cni/attachments.json, written durably (temp file + rename +
 * fsync) after every change, so a restarted router knows every sandbox it plugged in. A record
 * is written `pending` before anything is made and `ready` once all of it is: a router killed in
 * between finds the pending record at start and undoes whatever part was made.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurable } from '../os/durable-file.js';
import type { AttachmentKey, CniAttachmentJson } from './wire.js';

/** The router's answer for the attachment (wire.ts) plus what only the router keeps. */
export interface CniRecord extends CniAttachmentJson {
  /** dev:inode of the netns file at ADD: a later namespace at the same path is another sandbox. */
  netnsId: string;
  state: 'pending' | 'ready';
  /** Loom IPAM id; absent when a delegated IPAM chose the address. */
  ipamId?: string;
  dnsId: string;
  podName?: string;
}

export function sameKey(a: AttachmentKey, b: AttachmentKey): boolean {
  return a.containerId === b.containerId && a.ifname === b.ifname;
}

export class CniStore {
  readonly file: string;

  constructor(stateDir: string) {
    this.file = join(stateDir, 'cni', 'attachments.json');
  }

  load(): CniRecord[] {
    try {
      const value: unknown = JSON.parse(readFileSync(this.file, 'utf8'));
      return Array.isArray(value) ? (value as CniRecord[]).filter((r) => typeof r?.containerId === 'string' && typeof r.ifname === 'string' && typeof r.hostVeth === 'string') : [];
    } catch {
      return [];
    }
  }

  save(records: readonly CniRecord[]): void {
    mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 });
    writeFileDurable(this.file, JSON.stringify(records, null, 1) + '\n', 0o600);
  }

  /** Replaces the record of the same key (or adds it). */
  put(record: CniRecord): void {
    this.save([...this.load().filter((r) => !sameKey(r, record)), record]);
  }

  remove(key: AttachmentKey): void {
    const all = this.load();
    const keep = all.filter((r) => !sameKey(r, key));
    if (keep.length !== all.length) this.save(keep);
  }
}
