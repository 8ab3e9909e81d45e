/** Docker's remote network and IPAM drivers, and `loom attach` of Docker containers. */
export { DockerSubsystem, DOCKER_SUBSYSTEM } from './daemon.js';
export { DockerPlugin, PLUGIN_NAME } from './plugin.js';
export { parseDockerOptions, dockerArgs, type DockerLaunchConfig } from './options.js';
export { DOCKER_ROUTES } from './api.js';
