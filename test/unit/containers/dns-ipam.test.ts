/**
 * What `run` adds for names and addresses, without root: the container's resolv.conf text and its
 * validation, and the IPAM rules of ContainersSubsystem.run (which forms allocate, release when
 * the run fails, a clear error without IPAM). Nothing here spawns a process: every run below fails
 * validation inside the runtime before it would start one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerResolvConf, parseContainerDns } from '../../../src/containers/resolv-conf.js';
import { ContainersSubsystem } from '../../../src/containers/daemon.js';
import { parseRunSpec } from '../../../src/containers/validate.js';
import { type AddressSpec, formatAddressSpec, parseAddressSpec } from '../../../src/core/address-spec.js';
import { FakeClock } from '../../../src/core/clock.js';
import { type Cidr, formatCidr, parseCidr } from '../../../src/core/net.js';
import { isLoomError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { RecordingRunner } from '../../../src/os/runner.js';
import { MemoryNetnsLinks } from '../../../src/os/netns-links-memory.js';

test('resolv.conf: the host server, the search domain, ndots:1', () => {
  assert.equal(containerResolvConf({ nameserver: '10.32.0.1', domain: 'Loom.Local' }), '# written by Loom for this container\nnameserver 10.32.0.1\nsearch loom.local\noptions ndots:1\n');
});

test('resolv.conf: anything that could add a line or is not an IPv4 server is refused', () => {
  for (const bad of [
    { nameserver: '10.32.0.1\nnameserver 8.8.8.8', domain: 'loom.local' },
    { nameserver: 'fe80::1', domain: 'loom.local' },
    { nameserver: '10.32.0.1', domain: 'loom.local\noptions debug' },
    { nameserver: '10.32.0.1', domain: '' },
    { nameserver: '10.32.0.1', domain: 'a..b' },
    { nameserver: 7, domain: 'loom.local' },
  ]) {
    assert.throws(() => parseContainerDns(bad as never), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'), JSON.stringify(bad));
  }
  const spec = { name: 'web', cidr: parseCidr('10.32.0.5/12'), cmd: ['true'], bridge: 'loom', mtu: 1404 };
  assert.throws(() => parseRunSpec({ ...spec, dns: { nameserver: 'x', domain: 'loom.local' } }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => parseRunSpec({ ...spec, id: '../etc' as never }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
  assert.deepEqual(parseRunSpec({ ...spec, dns: { nameserver: '10.32.0.1', domain: 'loom.local' } }).dns, { nameserver: '10.32.0.1', domain: 'loom.local' });
});

function subsystem(ipam?: { calls: string[] }) {
  const dir = mkdtempSync(join(tmpdir(), 'loom-cdns-'));
  const runner = new RecordingRunner();
  const addresses = ipam
    ? {
        async assign(id: string, spec: AddressSpec) {
          ipam.calls.push(`assign ${id.length === 12 ? 'ID' : id} ${formatAddressSpec(spec)}`);
          return parseCidr('10.32.0.7/12');
        },
        async release(id: string) {
          ipam.calls.push(`release ${id.length === 12 ? 'ID' : id}`);
          return 1;
        },
        /** The allocation range of this stand-in: 10.32.0.0/12. */
        covers: (cidr: Cidr) => /^10\.(3[2-9]|4[0-7])\./.test(formatCidr(cidr)),
      }
    : undefined;
  const containers = new ContainersSubsystem({ clock: new FakeClock(), logger: silentLogger, runner, netnsLinks: new MemoryNetnsLinks(), ...(addresses ? { ipam: addresses } : {}) }, { stateDir: dir });
  return { containers, runner, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('run with net:default or no address allocates for the new id and releases it when the run fails', async () => {
  const ipam = { calls: [] as string[] };
  const s = subsystem(ipam);
  try {
    // An invalid name fails inside the runtime, after the allocation: the address must go back.
    await assert.rejects(s.containers.run({ name: '-bad-', address: parseAddressSpec('net:default'), cmd: ['true'] }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    await assert.rejects(s.containers.run({ name: '-bad-', address: parseAddressSpec(''), cmd: ['true'] }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    await assert.rejects(s.containers.run({ name: '-bad-', address: parseAddressSpec('net:10.32.1.0/24'), cmd: ['true'] }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    assert.deepEqual(ipam.calls, ['assign ID net:default', 'release ID', 'assign ID net:default', 'release ID', 'assign ID net:10.32.1.0/24', 'release ID']);
    ipam.calls.length = 0;
    await assert.rejects(s.containers.run({ name: '-bad-', address: parseAddressSpec('10.2.1.1/24'), cmd: ['true'] }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    assert.deepEqual(ipam.calls, [], 'a static address outside the range is used as given');
    await assert.rejects(s.containers.run({ name: '-bad-', address: parseAddressSpec('10.47.0.1/12'), cmd: ['true'] }), (e) => isLoomError(e, 'ERR_INVALID_ARGUMENT'));
    assert.deepEqual(ipam.calls, ['assign ID 10.47.0.1/12', 'release ID'], 'a static address inside the range is claimed through IPAM');
    assert.deepEqual(s.runner.calls, [], 'no command ran');
  } finally {
    s.done();
  }
});

test('run with net:default without IPAM is ERR_UNAVAILABLE with a hint', async () => {
  const s = subsystem();
  try {
    await assert.rejects(s.containers.run({ name: 'web', address: parseAddressSpec('net:default'), cmd: ['true'] }), (e) => isLoomError(e, 'ERR_UNAVAILABLE') && /a\.b\.c\.d\/n/.test(e.message));
    assert.deepEqual(s.runner.calls, []);
  } finally {
    s.done();
  }
});
