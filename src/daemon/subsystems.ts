import { dnsSubsystemFactory } from '../dns/daemon-factory.js';
import { ipamSubsystemFactory } from '../ipam/daemon-factory.js';
import type { SubsystemFactory } from './subsystem.js';
import { dataplaneSubsystemFactory } from '../dataplane/controller/subsystem.js';
import { containersSubsystemFactory } from '../containers/daemon.js';
import { hostAddressSubsystemFactory } from './host-address.js';

/**
 * Every subsystem of the daemon, in start order (stopped in reverse). A subsystem that needs
 * another comes after it and finds it through `components.subsystems`. Adding one is one line.
 */
export const SUBSYSTEMS: readonly SubsystemFactory[] = [ipamSubsystemFactory, dnsSubsystemFactory, dataplaneSubsystemFactory, hostAddressSubsystemFactory, containersSubsystemFactory];
