/**
 * Every row of the benchmark, in table order. A new path is one entry here.
 */
import type { DataPath } from '../types.js';
import { vethPath } from './veth.js';
import { vxlanPath } from './vxlan.js';
import { tincPath } from './tinc.js';
import { nebulaPath } from './nebula.js';
import { wireguardGoPath } from './wireguard-go.js';
import { loomPaths } from './loom.js';

export const DATA_PATHS: readonly DataPath[] = [vethPath, vxlanPath, tincPath, nebulaPath, wireguardGoPath, ...loomPaths];
