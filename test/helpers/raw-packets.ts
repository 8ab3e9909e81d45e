/**
 * Packets an attacker on the underlay could send, for the security tests: UDP datagrams with any
 * source address (a raw IPv4 socket, IP_HDRINCL, from python3's standard library: Node has no raw
 * sockets), UDP payloads read back from a tcpdump capture (pcap, Ethernet), and the frames to put
 * in them (VXLAN around an ICMP echo request). Everything is sent inside a lab host.
 */
import { readFileSync } from 'node:fs';
import type { HostRef, Lab } from '../../src/lab/index.js';

/** Sends each payload (hex, one per line on stdin) as one UDP datagram from SRC:SPORT to DST:DPORT; prints how many. */
const RAW_SENDER = `
import socket, struct, sys
src, sport, dst, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sent = 0
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    payload = bytes.fromhex(line)
    udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
    # Total length, id and checksum 0: the kernel fills them in (raw(7)).
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 0, 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    s.sendto(ip + udp, (dst, 0))
    sent += 1
print(sent)
`;

export interface RawUdp {
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
}

/** Sends `payloads` from `host` as UDP with a forged (or real) source; returns the count sent. */
export async function sendRawUdp(lab: Lab, host: HostRef, to: RawUdp, payloads: readonly Uint8Array[]): Promise<number> {
  const input = payloads.map((p) => Buffer.from(p).toString('hex')).join('\n') + '\n';
  const r = await lab.exec(host, 'python3', ['-c', RAW_SENDER, to.srcIp, String(to.srcPort), to.dstIp, String(to.dstPort)], { input, timeoutMs: 20_000 });
  return Number(r.stdout.trim());
}

export interface CapturedUdp {
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  payload: Buffer;
}

/** The UDP datagrams of a classic pcap file of Ethernet frames (tcpdump -w), in capture order. */
export function readPcapUdp(path: string): CapturedUdp[] {
  const b = readFileSync(path);
  if (b.length < 24) return [];
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const u32 = (at: number): number => (le ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const out: CapturedUdp[] = [];
  for (let at = 24; at + 16 <= b.length; ) {
    const captured = u32(at + 8);
    const frame = b.subarray(at + 16, at + 16 + captured);
    at += 16 + captured;
    if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    if (ip[9] !== 17 || (ip.readUInt16BE(6) & 0x1fff) !== 0 || (ip.readUInt16BE(6) & 0x2000) !== 0) continue; // UDP, unfragmented
    const udp = ip.subarray(ihl);
    const ipString = (o: number): string => `${ip[o]}.${ip[o + 1]}.${ip[o + 2]}.${ip[o + 3]}`;
    out.push({ src: ipString(12), srcPort: udp.readUInt16BE(0), dst: ipString(16), dstPort: udp.readUInt16BE(2), payload: Buffer.from(udp.subarray(8, udp.readUInt16BE(4))) });
  }
  return out;
}

function checksum(bytes: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += bytes.readUInt16BE(i);
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.replaceAll(':', ''), 'hex');
}

function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

/** An Ethernet frame holding an ICMP echo request from `srcIp` to `dstIp` (MAC `dstMac`). */
export function icmpEchoFrame(o: { dstMac: string; srcMac: string; srcIp: string; dstIp: string; id: number }): Buffer {
  const icmp = Buffer.alloc(8 + 16);
  icmp[0] = 8; // echo request
  icmp.writeUInt16BE(o.id, 4);
  icmp.writeUInt16BE(1, 6);
  icmp.write('loom-intruder!!!', 8, 'ascii');
  icmp.writeUInt16BE(checksum(icmp), 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + icmp.length, 2);
  ip[8] = 64;
  ip[9] = 1;
  ipBytes(o.srcIp).copy(ip, 12);
  ipBytes(o.dstIp).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  return Buffer.concat([macBytes(o.dstMac), macBytes(o.srcMac), Buffer.from([0x08, 0x00]), ip, icmp]);
}

/** A VXLAN datagram payload (RFC 7348: flags I, 24-bit VNI) around `frame`. */
export function vxlanPayload(vni: number, frame: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header[0] = 0x08;
  header.writeUIntBE(vni, 4, 3);
  return Buffer.concat([header, frame]);
}

/** ICMP echo requests a network namespace has received (Icmp InEchos of /proc/net/snmp, read inside it). */
export async function icmpInEchos(lab: Lab, host: HostRef, pid: number): Promise<number> {
  const r = await lab.exec(host, 'nsenter', ['--target', String(pid), '--net', 'cat', '/proc/net/snmp']);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const i = names.indexOf('InEchos');
  if (i < 0) throw new Error('no Icmp InEchos in /proc/net/snmp');
  return Number(values[i]);
}
