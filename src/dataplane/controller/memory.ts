/**
 * The controller's memory of what it last applied, in one JSON file (STATE_DIR/dataplane.json),
 * written atomically and durably (writeFileDurable). Read back through the data plane's own validation, so
 * a damaged file is ERR_INVALID_ARGUMENT (the controller then starts from the mesh alone).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { LoomError } from '../../core/errors.js';
import { writeFileDurable } from '../../os/durable-file.js';
import { parseDesiredDataplane } from '../validate.js';
import type { DataplaneMemory } from './controller.js';
import type { RememberedDataplane } from './desired.js';

export function fileMemory(path: string): DataplaneMemory {
  return {
    load(): RememberedDataplane | null {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
      let value: { peers?: unknown; remoteMacs?: unknown };
      try {
        value = JSON.parse(text) as typeof value;
      } catch (err) {
        throw new LoomError('ERR_INVALID_CONFIG', `${path} is not JSON`, { cause: err });
      }
      // Names and numbers here are placeholders: only peers and MACs are remembered.
      const parsed = parseDesiredDataplane({ bridge: { name: 'b', mtu: 1500 }, vxlan: { name: 'v', vni: 1, port: 4789, mtu: 1500, localIp: null }, peers: value.peers, remoteMacs: value.remoteMacs });
      return { peers: parsed.peers, remoteMacs: parsed.remoteMacs };
    },
    save(applied) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileDurable(path, JSON.stringify(applied) + '\n', 0o600);
    },
  };
}
