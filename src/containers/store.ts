/**
 * Container records in STATE_DIR/containers/<id>.json, one file each. Writes are atomic and
 * durable (writeFileDurable), so a reader sees the old record or the new one, never half, also
 * after a crash. Files that do not parse are reported as ERR_INVALID_CONFIG by `load` and skipped by `list`.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../core/errors.js';
import { parseContainerId, type ContainerId } from '../core/ids.js';
import { writeFileDurable } from '../os/durable-file.js';
import type { ContainerRecord } from './types.js';

function isRecord(v: unknown): v is ContainerRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r['id'] === 'string' &&
    typeof r['name'] === 'string' &&
    Number.isInteger(r['pid']) &&
    Number.isInteger(r['pidStartTime']) &&
    Number.isInteger(r['unsharePid']) &&
    typeof r['mac'] === 'string' &&
    Array.isArray(r['cidrs']) &&
    r['cidrs'].every((c) => typeof c === 'string') &&
    typeof r['hostVeth'] === 'string' &&
    typeof r['bridge'] === 'string' &&
    typeof r['createdAt'] === 'string'
  );
}

export class ContainerStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'containers');
  }

  private path(id: ContainerId): string {
    return join(this.dir, `${id}.json`);
  }

  /** Scratch files of a container (its log, its start gate) live beside its record. */
  scratchPath(id: ContainerId, suffix: string): string {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return join(this.dir, `${id}.${suffix}`);
  }

  save(record: ContainerRecord): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileDurable(this.path(record.id), `${JSON.stringify(record, null, 2)}\n`, 0o600);
  }

  load(id: ContainerId): ContainerRecord | null {
    let text: string;
    try {
      text = readFileSync(this.path(parseContainerId(id)), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new LoomError('ERR_INVALID_CONFIG', `container record ${id} is not JSON`, { cause: err });
    }
    if (!isRecord(value) || value.id !== id) throw new LoomError('ERR_INVALID_CONFIG', `container record ${id} is malformed`);
    return value;
  }

  list(): ContainerRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: ContainerRecord[] = [];
    for (const file of names.sort()) {
      if (!file.endsWith('.json') || file.startsWith('.')) continue;
      try {
        const r = this.load(file.slice(0, -5) as ContainerId);
        if (r) out.push(r);
      } catch {
        // A broken record is skipped here; `load` reports it to whoever asks for that id.
      }
    }
    return out;
  }

  /** Removes the record and the container's scratch files. Idempotent. */
  remove(id: ContainerId): void {
    for (const suffix of ['json', 'log', 'gate', 'resolv.conf']) rmSync(join(this.dir, `${id}.${suffix}`), { force: true });
  }
}
