/**
 * A small client of Docker's Engine API (the daemon's own HTTP API on /var/run/docker.sock or a
 * tcp address): what the integration needs and no more. Answers are parsed from `unknown` into
 * the few fields used. The event stream is one JSON object per line, kept open by Docker.
 */
import { request, type IncomingMessage, type ClientRequest } from 'node:http';
import { LoomError } from '../core/errors.js';
import type { DockerApiTarget } from './options.js';

export interface EngineContainer {
  id: string;
  /** Without Docker's leading "/". */
  name: string;
  running: boolean;
  pid: number;
  /** Docker network name -> endpoint on it. */
  networks: Record<string, { networkId: string; endpointId: string; ipAddress: string }>;
  /** The host path Docker bind-mounts as the container's /etc/resolv.conf. */
  resolvConfPath?: string;
  /** HostConfig.Dns / DnsSearch: what the user gave with --dns / --dns-search. */
  dns?: string[];
  dnsSearch?: string[];
}

export interface EngineEvent {
  type: 'container' | 'network';
  action: string;
  /** The container id (container events) or the network id (network events). */
  actorId: string;
  attributes: Record<string, string>;
}

export interface EngineApi {
  ping(): Promise<void>;
  /** null when Docker has no such container. */
  inspect(idOrName: string): Promise<EngineContainer | null>;
  /** Ids of running containers. */
  runningContainers(): Promise<string[]>;
  /** Calls `onEvent` per container/network event until the stream ends; resolves then, rejects on error. */
  events(onEvent: (e: EngineEvent) => void, signal: AbortSignal): Promise<void>;
}

const TIMEOUT_MS = 10_000;
const MAX_ANSWER = 16 << 20;

function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}
function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : [];
}

/** Parses an inspect answer (exported for tests). */
export function parseInspect(value: unknown): EngineContainer {
  const c = obj(value);
  const state = obj(c['State']);
  const networks: EngineContainer['networks'] = {};
  for (const [name, n] of Object.entries(obj(obj(c['NetworkSettings'])['Networks']))) {
    const net = obj(n);
    networks[name] = { networkId: str(net['NetworkID']), endpointId: str(net['EndpointID']), ipAddress: str(net['IPAddress']) };
  }
  const id = str(c['Id']);
  if (id === '') throw new LoomError('ERR_PROTOCOL', 'Docker answered an inspect without an Id');
  const host = obj(c['HostConfig']);
  return {
    id,
    name: str(c['Name']).replace(/^\//, ''),
    running: state['Running'] === true,
    pid: typeof state['Pid'] === 'number' ? state['Pid'] : 0,
    networks,
    resolvConfPath: str(c['ResolvConfPath']),
    dns: strings(host['Dns']),
    dnsSearch: strings(host['DnsSearch']),
  };
}

/** Parses one line of the event stream; null for anything else than a container or network event. */
export function parseEvent(line: string): EngineEvent | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  const e = obj(v);
  const actor = obj(e['Actor']);
  const type = str(e['Type']);
  if (type !== 'container' && type !== 'network') return null;
  const attributes: Record<string, string> = {};
  for (const [k, a] of Object.entries(obj(actor['Attributes']))) if (typeof a === 'string') attributes[k] = a;
  return { type, action: str(e['Action']).split(':')[0] ?? '', actorId: str(actor['ID']), attributes };
}

export class HttpEngineApi implements EngineApi {
  constructor(private readonly target: DockerApiTarget) {}

  private open(method: string, path: string, signal?: AbortSignal): Promise<IncomingMessage> {
    const where = this.target.kind === 'unix' ? { socketPath: this.target.path } : { host: this.target.host, port: this.target.port };
    return new Promise((resolve, reject) => {
      const req: ClientRequest = request({ ...where, method, path, headers: { Host: 'docker' }, ...(signal ? { signal } : {}) }, resolve);
      req.on('error', (err) => reject(new LoomError('ERR_UNAVAILABLE', `Docker API ${this.describe()}: ${err.message}`, { cause: err })));
      if (!signal) req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error('timed out')));
      req.end();
    });
  }

  describe(): string {
    return this.target.kind === 'unix' ? `unix://${this.target.path}` : `tcp://${this.target.host}:${this.target.port}`;
  }

  private async json(method: string, path: string): Promise<{ status: number; body: unknown }> {
    const res = await this.open(method, path);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_ANSWER) throw new LoomError('ERR_PROTOCOL', 'Docker API answer too large');
      chunks.push(c);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // plain text (ping's "OK", some errors)
    }
    return { status: res.statusCode ?? 0, body };
  }

  async ping(): Promise<void> {
    const r = await this.json('GET', '/_ping');
    if (r.status !== 200) throw new LoomError('ERR_UNAVAILABLE', `Docker API ${this.describe()} answered ping with ${r.status}`);
  }

  async inspect(idOrName: string): Promise<EngineContainer | null> {
    const r = await this.json('GET', `/containers/${encodeURIComponent(idOrName)}/json`);
    if (r.status === 404) return null;
    if (r.status !== 200) throw new LoomError('ERR_UNAVAILABLE', `Docker inspect of ${idOrName.slice(0, 64)}: ${r.status} ${str(obj(r.body)['message']).slice(0, 200)}`);
    return parseInspect(r.body);
  }

  async runningContainers(): Promise<string[]> {
    const r = await this.json('GET', '/containers/json');
    if (r.status !== 200 || !Array.isArray(r.body)) throw new LoomError('ERR_UNAVAILABLE', `Docker container list: ${r.status}`);
    return r.body.map((c) => str(obj(c)['Id'])).filter((s) => s !== '');
  }

  async events(onEvent: (e: EngineEvent) => void, signal: AbortSignal): Promise<void> {
    const filters = encodeURIComponent(JSON.stringify({ type: ['container', 'network'] }));
    const res = await this.open('GET', `/events?filters=${filters}`, signal);
    if (res.statusCode !== 200) throw new LoomError('ERR_UNAVAILABLE', `Docker events: ${res.statusCode}`);
    let pending = '';
    for await (const chunk of res as AsyncIterable<Buffer>) {
      pending += chunk.toString('utf8');
      if (pending.length > MAX_ANSWER) throw new LoomError('ERR_PROTOCOL', 'Docker event too large');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        const e = line === '' ? null : parseEvent(line);
        if (e) onEvent(e);
      }
    }
  }
}
