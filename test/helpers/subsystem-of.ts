/**
 * A running daemon's subsystem by name and class, for tests that start a daemon and then drive
 * one of its parts. (The daemon itself wires subsystems by construction, src/daemon/subsystems.ts.)
 */
import type { SubsystemRegistry } from '../../src/daemon/subsystem.js';
import { DNS_SUBSYSTEM, DnsSubsystem } from '../../src/dns/daemon.js';
import { IPAM_SUBSYSTEM, IpamSubsystem } from '../../src/ipam/daemon.js';

export function ipamSubsystemOf(subsystems: SubsystemRegistry): IpamSubsystem | undefined {
  const s = subsystems.get(IPAM_SUBSYSTEM);
  return s instanceof IpamSubsystem ? s : undefined;
}

export function dnsSubsystemOf(subsystems: SubsystemRegistry): DnsSubsystem | undefined {
  const s = subsystems.get(DNS_SUBSYSTEM);
  return s instanceof DnsSubsystem ? s : undefined;
}
