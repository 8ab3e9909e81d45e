export * from './runner.js';
export * from './netns.js';
export * from './lab-firewall.js';
export * from './lab-cleanup.js';
export { LAB_ENV_MARKER } from './lab-procs.js';
export * from './process.js';
