import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalMacSources } from '../../../src/daemon/local-macs.js';

test('LocalMacSources: each source replaces only its own MACs; the sink gets the union', () => {
  const seen: string[][] = [];
  const sources = new LocalMacSources({ setLocalMacs: (macs) => seen.push([...macs].sort()) });
  const a = sources.source('containers');
  const b = sources.source('docker');
  a.setLocalMacs(['02:00:00:00:00:01', '02:00:00:00:00:02']);
  b.setLocalMacs(['02:00:00:00:00:03']);
  a.setLocalMacs(['02:00:00:00:00:02']);
  b.setLocalMacs([]);
  assert.deepEqual(seen, [
    ['02:00:00:00:00:01', '02:00:00:00:00:02'],
    ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'],
    ['02:00:00:00:00:02', '02:00:00:00:00:03'],
    ['02:00:00:00:00:02'],
  ]);
});

test('LocalMacSources: a MAC held by two sources stays until both drop it', () => {
  let last: string[] = [];
  const sources = new LocalMacSources({ setLocalMacs: (macs) => (last = [...macs]) });
  sources.source('a').setLocalMacs(['02:00:00:00:00:09']);
  sources.source('b').setLocalMacs(['02:00:00:00:00:09']);
  sources.source('a').setLocalMacs([]);
  assert.deepEqual(last, ['02:00:00:00:00:09']);
  sources.source('b').setLocalMacs([]);
  assert.deepEqual(last, []);
});
