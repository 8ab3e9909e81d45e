import type { CliCommand } from '../command.js';
import { connectCommand } from './connect.js';
import { demoCommand } from './demo.js';
import { forgetCommand } from './forget.js';
import { launchCommand } from './launch.js';
import { reportCommand } from './report.js';
import { statusCommand } from './status.js';
import { stopCommand } from './stop.js';

/** Every `loom` command, in help order. A new command is one file plus one line here. */
export const COMMANDS: readonly CliCommand[] = [launchCommand, statusCommand, reportCommand, connectCommand, forgetCommand, stopCommand, demoCommand];
