/**
 * SO_PEERCRED (src/os/peer-credentials.ts): the struct ucred decoding, and the real call on both
 * ends of a unix socket pair in this process (both report our own pid and uid).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type Socket } from 'node:net';
import { decodeUcred, peerCredentials, streamSocketFd, UCRED_BYTES } from '../../../src/os/peer-credentials.js';
import { testApiSocket } from '../../helpers/api-socket.js';

test('struct ucred: pid (signed), uid, gid, each 32 bits in host order', () => {
  const le = Buffer.from([0x39, 0x30, 0, 0, 0xfe, 0xff, 0, 0, 0xe8, 0x03, 0, 0]);
  assert.deepEqual(decodeUcred(le, true), { pid: 12345, uid: 65534, gid: 1000 });
  const be = Buffer.from([0, 0, 0x30, 0x39, 0, 0, 0xff, 0xfe, 0, 0, 0x03, 0xe8]);
  assert.deepEqual(decodeUcred(be, false), { pid: 12345, uid: 65534, gid: 1000 });
  assert.deepEqual(decodeUcred(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), true), { pid: -1, uid: 0xffffffff, gid: 0 });
  // A view into a larger buffer reads its own bytes.
  const inner = Buffer.concat([Buffer.alloc(3, 0xaa), le]).subarray(3);
  assert.deepEqual(decodeUcred(inner, true), { pid: 12345, uid: 65534, gid: 1000 });
  assert.throws(() => decodeUcred(Buffer.alloc(UCRED_BYTES - 1)), RangeError);
});

test('SO_PEERCRED on an accepted abstract socket: the connecting process\'s pid and uid', async () => {
  const name = testApiSocket();
  let accepted: Socket | null = null;
  const server = createServer((s) => (accepted = s));
  await new Promise<void>((resolve) => server.listen('\0' + name, resolve));
  const client = createConnection({ path: '\0' + name });
  try {
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    for (let i = 0; i < 100 && accepted === null; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(accepted, 'the server accepted');
    assert.equal(typeof streamSocketFd(accepted), 'number');
    const creds = peerCredentials(accepted);
    assert.deepEqual(creds, { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    assert.deepEqual(peerCredentials(client), creds, 'the other end sees this process too');
  } finally {
    client.destroy();
    (accepted as Socket | null)?.destroy();
    await new Promise((r) => server.close(r));
  }
});
