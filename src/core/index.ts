export * from './errors.js';
export * from './clock.js';
export * from './logger.js';
export * from './ids.js';
export * from './subsystem.js';
export * from './net.js';
export * from './address-spec.js';
export * from './events.js';
