import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeAttrs,
  decodeError,
  decodeMessages,
  decodeVxlanLocalBypass,
  encodeAttr,
  encodeGetLink,
  encodeNested,
  encodeSetVxlanLocalBypass,
  encodeString,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_VXLAN_LOCALBYPASS,
  RTM_NEWLINK,
} from '../../../src/os/netlink-codec.js';
import { isLoomError } from '../../../src/core/errors.js';

test('set-local-bypass request has the exact kernel layout', () => {
  const msg = encodeSetVxlanLocalBypass(7, false, 99);
  // nlmsghdr(16) + ifinfomsg(16) + LINKINFO hdr(4) + KIND "vxlan\0"(4+6 -> 12) + DATA hdr(4) + LOCALBYPASS u8(4+1 -> 8)
  assert.equal(msg.length, 16 + 16 + 4 + 12 + 4 + 8);
  assert.equal(msg.readUInt32LE(0), msg.length);
  assert.equal(msg.readUInt16LE(4), RTM_NEWLINK);
  assert.equal(msg.readUInt16LE(6), 0x1 | 0x4);
  assert.equal(msg.readUInt32LE(8), 99);
  assert.equal(msg.readInt32LE(16 + 4), 7);
  assert.equal(msg.readUInt16LE(32 + 2), IFLA_LINKINFO | 0x8000);
  assert.equal(msg.readUInt16LE(36 + 2), IFLA_INFO_KIND);
  assert.equal(msg.subarray(40, 46).toString('latin1'), 'vxlan\0');
  assert.equal(msg.readUInt16LE(48 + 2), IFLA_INFO_DATA | 0x8000);
  assert.equal(msg.readUInt16LE(52), 5);
  assert.equal(msg.readUInt16LE(54), IFLA_VXLAN_LOCALBYPASS);
  assert.equal(msg[56], 0);
  assert.equal(encodeGetLink(3, 1).length, 32);
});

function newlinkPayload(bypass: number | null, kind = 'vxlan'): Buffer {
  const data = bypass === null ? [] : [encodeNested(IFLA_INFO_DATA, [encodeAttr(1, Buffer.alloc(4)), encodeAttr(IFLA_VXLAN_LOCALBYPASS, Uint8Array.of(bypass))])];
  return Buffer.concat([Buffer.alloc(16), encodeString(3, 'vx0'), encodeNested(IFLA_LINKINFO, [encodeString(IFLA_INFO_KIND, kind), ...data])]);
}

test('local bypass is read back from an RTM_NEWLINK payload; absent means null', () => {
  assert.equal(decodeVxlanLocalBypass(newlinkPayload(1)), true);
  assert.equal(decodeVxlanLocalBypass(newlinkPayload(0)), false);
  assert.equal(decodeVxlanLocalBypass(newlinkPayload(null)), null);
  assert.equal(decodeVxlanLocalBypass(newlinkPayload(1, 'bridge')), null);
});

test('messages split and errors decode', () => {
  const ack = Buffer.alloc(36);
  ack.writeUInt32LE(36, 0);
  ack.writeUInt16LE(2, 4);
  ack.writeInt32LE(-17, 16);
  const two = Buffer.concat([ack, ack]);
  const msgs = decodeMessages(two);
  assert.equal(msgs.length, 2);
  assert.equal(decodeError(msgs[0]!.payload), 17);
});

test('malformed bytes are ERR_PROTOCOL, never another exception', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const buf = Buffer.from(bytes);
      for (const decode of [decodeMessages, decodeAttrs, decodeVxlanLocalBypass, decodeError] as Array<(b: Buffer) => unknown>) {
        try {
          decode(buf);
        } catch (e) {
          assert.ok(isLoomError(e, 'ERR_PROTOCOL'), String(e));
        }
      }
    }),
    { numRuns: 2000 },
  );
  const bad = Buffer.alloc(20);
  bad.writeUInt32LE(400, 0);
  assert.throws(() => decodeMessages(bad), (e) => isLoomError(e, 'ERR_PROTOCOL'));
});
