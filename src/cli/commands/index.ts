import type { CliCommand } from '../command.js';
import { connectCommand } from './connect.js';
import { demoCommand } from './demo.js';
import { dnsAddCommand } from './dns-add.js';
import { dnsLookupCommand } from './dns-lookup.js';
import { dnsRemoveCommand } from './dns-remove.js';
import { forgetCommand } from './forget.js';
import { launchCommand } from './launch.js';
import { reportCommand } from './report.js';
import { statusCommand } from './status.js';
import { stopCommand } from './stop.js';
import { attachCommand } from './attach.js';
import { detachCommand } from './detach.js';
import { execCommand } from './exec.js';
import { psCommand } from './ps.js';
import { rmCommand } from './rm.js';
import { runCommand } from './run.js';
import { rmpeerCommand } from './rmpeer.js';
import { resetCommand } from './reset.js';
import { exposeCommand, hideCommand } from './expose.js';
import { cniCommand } from './cni.js';

/** Every `loom` command, in help order. A new command is one file plus one line here. */
export const COMMANDS: readonly CliCommand[] = [launchCommand, statusCommand, reportCommand, connectCommand, forgetCommand, dnsAddCommand, dnsRemoveCommand, dnsLookupCommand, stopCommand, demoCommand, runCommand, execCommand, psCommand, attachCommand, detachCommand, exposeCommand, hideCommand, rmCommand, rmpeerCommand, resetCommand, cniCommand];
