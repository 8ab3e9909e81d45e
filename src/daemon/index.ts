/**
 * The router daemon: validated launch options, the state dir (peer name, pid file, log), the
 * foreground lifecycle (router + API + signals) and the background launcher. The production
 * router factory lives in ./router-factory.ts and is loaded lazily by the CLI.
 */
export { parseLaunchOptions, foregroundArgs, defaultNickname, DEFAULT_PORT, DEFAULT_STATE_DIR, DEFAULT_CONN_LIMIT, type LaunchConfig, type RawLaunchOptions } from './options.js';
export { StateDir, isAlive } from './state-dir.js';
export { startDaemon, runUntilStopped, type DaemonComponents, type RouterFactory, type RunningDaemon } from './foreground.js';
export { launchInBackground, childFailure, type BackgroundLaunch, type LaunchedDaemon } from './background.js';
export { createDaemonLogger } from './log.js';
export { type Subsystem, type SubsystemComponents, type SubsystemFactory, type SubsystemRegistry } from './subsystem.js';
export { SubsystemSet } from './subsystem-set.js';
export { createSubsystems, createIpamSubsystemFactory, createDnsSubsystemFactory, type SubsystemOverrides } from './subsystems.js';
