/**
 * Unicast messages of the "ipam" channel (a donation is not a message: the donor changes the
 * ring and broadcasts it). Fixed 7 bytes:
 *
 *   +---------+-----------+--------------+-------------+
 *   | type u8 | subnet? u8| subnet u32   | prefix u8   |
 *   +---------+-----------+--------------+-------------+
 *   type 1 = donate-request (please give me space, inside subnet if given)
 *   type 2 = donate-none    (I have nothing free there; ask someone else)
 */
import { LoomError } from '../core/errors.js';
import { type Cidr, cidrOf } from './cidr.js';

export type IpamMessage = { type: 'donate-request'; subnet: Cidr | null } | { type: 'donate-none'; subnet: Cidr | null };

const TYPE_CODES = { 'donate-request': 1, 'donate-none': 2 } as const;
const SIZE = 7;

export function encodeIpamMessage(msg: IpamMessage): Uint8Array {
  const buf = new Uint8Array(SIZE);
  const view = new DataView(buf.buffer);
  buf[0] = TYPE_CODES[msg.type];
  if (msg.subnet) {
    buf[1] = 1;
    view.setUint32(2, msg.subnet.start);
    buf[6] = msg.subnet.prefix;
  }
  return buf;
}

export function decodeIpamMessage(bytes: Uint8Array): IpamMessage {
  if (bytes.length !== SIZE) throw new LoomError('ERR_PROTOCOL', 'malformed ipam message: wrong length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let subnet: Cidr | null = null;
  if (bytes[1] === 1) {
    const prefix = bytes[6]!;
    if (prefix > 32) throw new LoomError('ERR_PROTOCOL', 'malformed ipam message: prefix over 32');
    subnet = cidrOf(view.getUint32(2), prefix);
    if (subnet.start % subnet.size !== 0) throw new LoomError('ERR_PROTOCOL', 'malformed ipam message: subnet has host bits set');
  } else if (bytes[1] !== 0) {
    throw new LoomError('ERR_PROTOCOL', 'malformed ipam message: bad subnet flag');
  }
  switch (bytes[0]) {
    case 1:
      return { type: 'donate-request', subnet };
    case 2:
      return { type: 'donate-none', subnet };
    default:
      throw new LoomError('ERR_PROTOCOL', `malformed ipam message: unknown type ${bytes[0]}`);
  }
}
