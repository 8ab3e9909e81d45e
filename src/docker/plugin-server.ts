/**
 * The plugin socket: HTTP on a unix socket `<plugin dir>/loom.sock`, where Docker finds legacy
 * plugins by name. Every call is a POST with a JSON body (possibly empty); every answer is JSON
 * with Docker's plugin content type, errors as `{"Err": "...", "Error": "..."}` (HTTP 200 would also do for
 * Docker, but a 500 keeps logs honest). Never throws on bad input: the body is bounded, parsed
 * here, and the handler's errors become Err answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { stampDate } from '../api/http-date-header.js';
import { LoomError, toLoomError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';
const MAX_BODY = 1 << 20;

export type PluginHandler = (path: string, body: unknown) => Promise<object>;

export class PluginServer {
  private server: Server | null = null;

  constructor(
    private readonly socketPath: string,
    private readonly handler: PluginHandler,
    private readonly logger: Logger,
  ) {}

  /** Listens (replacing a socket file an earlier run left). Idempotent. */
  async listen(): Promise<void> {
    if (this.server) return;
    mkdirSync(dirname(this.socketPath), { recursive: true });
    rmSync(this.socketPath, { force: true });
    const server = createServer((req, res) => void this.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err: err.message }, 'docker: plugin socket failed'));
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    rmSync(this.socketPath, { force: true });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stampDate(res);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const startedAt = performance.now();
    let answer: object;
    let status = 200;
    try {
      if (req.method !== 'POST') throw new LoomError('ERR_INVALID_ARGUMENT', `plugin calls are POST, not ${String(req.method).slice(0, 10)}`);
      const text = await readBody(req);
      let body: unknown = {};
      if (text.trim() !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          throw new LoomError('ERR_INVALID_ARGUMENT', `malformed JSON in ${path.slice(0, 60)}`);
        }
      }
      answer = await this.handler(path, body);
      this.logger.debug({ path, ms: Math.round(performance.now() - startedAt) }, 'docker: plugin call');
    } catch (err) {
      const e = toLoomError(err);
      status = e.code === 'ERR_INTERNAL' ? 500 : 200;
      // The network driver's protocol reads "Err", the IPAM driver's "Error" (libnetwork's
      // remote/api and ipams/remote/api); both keys, so either side sees the message.
      answer = { Err: e.message, Error: e.message };
      this.logger.info({ path: path.slice(0, 80), code: e.code, err: e.message }, 'docker: plugin call refused');
    }
    const out = JSON.stringify(answer);
    res.writeHead(status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(out) });
    res.end(out);
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new LoomError('ERR_INVALID_ARGUMENT', 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
