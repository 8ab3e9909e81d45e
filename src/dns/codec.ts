/**
 * Wire form of a record set (gossip channel "dns"). All integers big-endian.
 *
 *   u8  format (1)
 *   u32 count
 *   count x {
 *     u8  flags          bit 0: tombstone; other bits must be 0
 *     u32 version        >= 1
 *     6B  origin peer name
 *     4B  IPv4 address
 *     u8  container id length, then that many ASCII bytes
 *     u8  name length (1..253), then that many ASCII bytes (canonical name)
 *   }
 *
 * Decoding never trusts a length: every read is bounds-checked and every field validated;
 * anything else is ERR_PROTOCOL.
 */
import { LoomError } from '../core/errors.js';
import { isLoomError } from '../core/errors.js';
import { parseContainerId, peerNameFromBytes, peerNameToBytes } from '../core/ids.js';
import type { DnsRecord } from './record.js';
import { isValidName, MAX_NAME_LENGTH } from './names.js';

const FORMAT = 1;
const HEADER_BYTES = 5;
const MIN_ENTRY_BYTES = 1 + 4 + 6 + 4 + 1 + 1 + 1 + 1;

export function encodeRecords(records: Iterable<DnsRecord>, count: number): Uint8Array {
  const list = Array.from(records);
  if (list.length !== count) throw new LoomError('ERR_INTERNAL', 'dns codec: count mismatch');
  let size = HEADER_BYTES;
  for (const r of list) size += 1 + 4 + 6 + 4 + 1 + r.containerId.length + 1 + r.name.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = FORMAT;
  out.writeUInt32BE(list.length, 1);
  let o = HEADER_BYTES;
  for (const r of list) {
    out[o] = r.tombstone ? 1 : 0;
    out.writeUInt32BE(r.version, o + 1);
    peerNameToBytes(r.origin, out, o + 5);
    o += 11;
    for (const part of r.address.split('.')) out[o++] = Number(part);
    out[o++] = r.containerId.length;
    o += out.write(r.containerId, o, 'latin1');
    out[o++] = r.name.length;
    o += out.write(r.name, o, 'latin1');
  }
  return out;
}

function protocolError(message: string): LoomError {
  return new LoomError('ERR_PROTOCOL', `dns gossip: ${message}`);
}

export function decodeRecords(bytes: Uint8Array): DnsRecord[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < HEADER_BYTES) throw protocolError('message too short');
  if (buf[0] !== FORMAT) throw protocolError(`unknown format ${buf[0]}`);
  const count = buf.readUInt32BE(1);
  if (count * MIN_ENTRY_BYTES > buf.length - HEADER_BYTES) throw protocolError('count exceeds message size');
  const records: DnsRecord[] = [];
  let o = HEADER_BYTES;
  const need = (n: number): void => {
    if (o + n > buf.length) throw protocolError('truncated record');
  };
  for (let i = 0; i < count; i++) {
    need(MIN_ENTRY_BYTES - 2);
    const flags = buf[o]!;
    if (flags > 1) throw protocolError('unknown flags');
    const version = buf.readUInt32BE(o + 1);
    if (version === 0) throw protocolError('version 0');
    const origin = peerNameFromBytes(buf.subarray(o + 5, o + 11));
    const address = `${buf[o + 11]}.${buf[o + 12]}.${buf[o + 13]}.${buf[o + 14]}`;
    o += 15;
    const idLength = buf[o++]!;
    need(idLength + 1);
    const rawId = buf.toString('latin1', o, o + idLength);
    o += idLength;
    const nameLength = buf[o++]!;
    if (nameLength === 0 || nameLength > MAX_NAME_LENGTH) throw protocolError('bad name length');
    need(nameLength);
    const name = buf.toString('latin1', o, o + nameLength);
    o += nameLength;
    if (!isValidName(name)) throw protocolError('invalid name');
    let containerId;
    try {
      containerId = parseContainerId(rawId);
    } catch (err) {
      if (isLoomError(err)) throw protocolError('invalid container id');
      throw err;
    }
    records.push({ name, address, containerId, origin, version, tombstone: flags === 1 });
  }
  if (o !== buf.length) throw protocolError('trailing bytes');
  return records;
}
