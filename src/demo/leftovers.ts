/**
 * Labs whose owner is gone (kept by `loom demo --keep`, or left by a crash), from the owner records
 * in /run/loom-lab. `loom demo --clean` stops their marked processes (containers included) before
 * the lab cleanup removes their namespaces.
 */
import { readdirSync } from 'node:fs';
import { LAB_PREFIX_RE, LAB_RUN_DIR, ownerAlive, readOwnerRecord } from '../lab/index.js';

export function deadLabPrefixes(): string[] {
  let files: string[];
  try {
    files = readdirSync(LAB_RUN_DIR);
  } catch {
    return [];
  }
  return files
    .filter((f) => f.endsWith('.pid'))
    .map((f) => f.slice(0, -'.pid'.length))
    .filter((prefix) => {
      if (!LAB_PREFIX_RE.test(prefix)) return false;
      const owner = readOwnerRecord(prefix);
      return owner !== null && !ownerAlive(owner);
    });
}
