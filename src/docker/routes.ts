/** The Docker integration's endpoints (contract: ./api.ts). Without the subsystem they answer ERR_UNAVAILABLE. */
import type { ApiServer } from '../api/server.js';
import { parseWith } from '../api/validate.js';
import { LoomError } from '../core/errors.js';
import { DOCKER_ROUTES, dockerAttachBodySchema } from './api.js';
import type { DockerSubsystem } from './daemon.js';

export function registerDockerRoutes(server: ApiServer, docker: Pick<DockerSubsystem, 'attach' | 'report'> | null): void {
  const require = (): Pick<DockerSubsystem, 'attach' | 'report'> => {
    if (!docker) throw new LoomError('ERR_UNAVAILABLE', 'the Docker integration is off on this router (--no-docker, or no kernel data plane or IPAM)');
    return docker;
  };
  const { attach, status } = DOCKER_ROUTES;
  server.route(attach.method, attach.path, async (req) => {
    const body = parseWith(dockerAttachBodySchema, await req.body(), 'docker attach request');
    return { json: await require().attach(body.container, body.cidr) };
  });
  server.route(status.method, status.path, () => ({ json: require().report() }));
}
