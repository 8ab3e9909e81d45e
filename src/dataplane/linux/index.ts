export { LinuxDataplane, kernelVxlanNetlink, type DataplaneNames, type LinuxDataplaneComponents, type VxlanNetlink } from './linux-dataplane.js';
export { commandFor, type OpCommand } from './commands.js';
export { LinuxEgress, type LinuxEgressComponents } from './egress.js';
