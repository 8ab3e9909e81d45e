/**
 * A Kubernetes API server of our own, on 127.0.0.1, speaking just the endpoints Loom uses, the
 * way the real one answers them:
 *
 *   GET  /api/v1/nodes                                  NodeList with metadata.resourceVersion
 *   GET  /api/v1/nodes?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=N
 *        every event after RV, then live ones, one JSON object per line; BOOKMARK events on
 *        `bookmark()`; ended cleanly after timeoutSeconds; an RV older than the compacted
 *        history answers 410 Gone (as the HTTP status, or as an ERROR event in a 200 stream:
 *        real servers do both, depending on where the watch cache notices)
 *   GET  /api/v1/nodes/NAME                             200 or 404
 *   GET|PUT /api/v1/namespaces/NS/configmaps/NAME        404; PUT with a stale resourceVersion -> 409
 *   POST /api/v1/namespaces/NS/configmaps                409 AlreadyExists
 *
 * resourceVersions are one counter over all objects, as etcd's revision is. A bearer token,
 * if set, is required (401 otherwise). Tests drive it: add/delete nodes, compact history, drop
 * watch connections, delay writes to force races.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

interface NodeEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Record<string, unknown>;
}

interface OpenWatch {
  res: http.ServerResponse;
  bookmarks: boolean;
  timer: NodeJS.Timeout;
}

interface ConfigMapObject {
  metadata: { name: string; namespace: string; resourceVersion: string };
  data: Record<string, string>;
}

export interface WatchRequest {
  resourceVersion: string | null;
  allowWatchBookmarks: boolean;
  timeoutSeconds: number | null;
}

export class FakeKubeApi {
  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  private readonly sockets = new Set<Socket>();
  private rv = 100;
  private readonly nodes = new Map<string, Record<string, unknown>>();
  private readonly events: NodeEvent[] = [];
  /** Events at or before this revision are gone from the history. */
  private compactedRv = 0;
  private readonly watches = new Set<OpenWatch>();
  private readonly configMaps = new Map<string, ConfigMapObject>();

  /** `status`: 410 as the HTTP status; `event`: a 200 stream with one ERROR event. */
  goneMode: 'status' | 'event' = 'status';
  token: string | undefined;
  /** Runs before a ConfigMap write is checked and applied (a test makes two writers race here). */
  beforeConfigMapWrite: (() => Promise<void>) | undefined;
  readonly watchRequests: WatchRequest[] = [];
  lists = 0;

  /** The nodes now, by name -> first InternalIP. */
  nodeAddresses(): Map<string, string | undefined> {
    const out = new Map<string, string | undefined>();
    for (const [name, node] of this.nodes) {
      const addrs = ((node['status'] as { addresses?: { type: string; address: string }[] }).addresses ?? []).filter((a) => a.type === 'InternalIP');
      out.set(name, addrs[0]?.address);
    }
    return out;
  }
  conflicts = 0;
  configMapWrites = 0;

  /** On 127.0.0.1 unless told (the e2e fixture listens on its lab host's address). */
  async listen(host = '127.0.0.1'): Promise<string> {
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server.listen({ host, port: 0 }, resolve));
    return `http://${host}:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const w of this.watches) clearTimeout(w.timer);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get openWatches(): number {
    return this.watches.size;
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  addNode(name: string, internalIp: string | undefined, podCidr?: string): void {
    const exists = this.nodes.has(name);
    const object = {
      kind: 'Node',
      apiVersion: 'v1',
      metadata: { name, resourceVersion: String(++this.rv), labels: { 'kubernetes.io/hostname': name } },
      spec: podCidr === undefined ? {} : { podCIDR: podCidr },
      status: { addresses: [{ type: 'Hostname', address: name }, ...(internalIp === undefined ? [] : [{ type: 'InternalIP', address: internalIp }])] },
    };
    this.nodes.set(name, object);
    this.emit({ rv: this.rv, type: exists ? 'MODIFIED' : 'ADDED', object });
  }

  deleteNode(name: string): void {
    const old = this.nodes.get(name);
    if (!old) return;
    this.nodes.delete(name);
    const object = { ...old, metadata: { ...(old['metadata'] as object), resourceVersion: String(++this.rv) } };
    this.emit({ rv: this.rv, type: 'DELETED', object });
  }

  /** Forgets the event history up to now: a watch from any older resourceVersion gets 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.events.length = 0;
  }

  /** Moves the revision on without a node event (other objects changed), then sends a BOOKMARK to each watch that allows them. */
  bookmark(): void {
    this.rv += 5;
    for (const w of this.watches) if (w.bookmarks) w.res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } }) + '\n');
  }

  /** Cuts every open watch connection abruptly (a proxy or API server restart). */
  dropWatches(): void {
    for (const w of this.watches) {
      clearTimeout(w.timer);
      w.res.socket?.destroy();
    }
    this.watches.clear();
  }

  configMap(namespace: string, name: string): ConfigMapObject | undefined {
    return this.configMaps.get(`${namespace}/${name}`);
  }

  /** Writes a ConfigMap's data as an administrator would (moves its resourceVersion). */
  setConfigMapData(namespace: string, name: string, data: Record<string, string>): void {
    this.configMaps.set(`${namespace}/${name}`, { metadata: { name, namespace, resourceVersion: String(++this.rv) }, data });
  }

  private emit(event: NodeEvent): void {
    this.events.push(event);
    for (const w of this.watches) w.res.write(JSON.stringify({ type: event.type, object: event.object }) + '\n');
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) return status(res, 401, 'Unauthorized', 'Unauthorized');
    const body = await readBody(req);
    const path = url.pathname;
    if (req.method === 'GET' && path === '/api/v1/nodes') return url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true' ? this.watch(url, res) : this.list(res);
    let m = /^\/api\/v1\/nodes\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && m) {
      const node = this.nodes.get(decodeURIComponent(m[1]!));
      return node ? json(res, 200, node) : status(res, 404, 'NotFound', `nodes "${m[1]}" not found`);
    }
    m = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps(?:\/([^/]+))?$/.exec(path);
    if (m) return this.configMapRequest(req.method ?? 'GET', m[1]!, m[2], body, res);
    return status(res, 404, 'NotFound', `no route ${req.method} ${path}`);
  }

  private list(res: http.ServerResponse): void {
    this.lists++;
    json(res, 200, { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items: [...this.nodes.values()] });
  }

  private watch(url: URL, res: http.ServerResponse): void {
    const rvText = url.searchParams.get('resourceVersion');
    const timeout = url.searchParams.get('timeoutSeconds');
    const request: WatchRequest = { resourceVersion: rvText, allowWatchBookmarks: url.searchParams.get('allowWatchBookmarks') === 'true', timeoutSeconds: timeout === null ? null : Number(timeout) };
    this.watchRequests.push(request);
    const from = rvText === null || rvText === '' ? this.rv : Number(rvText);
    if (!Number.isInteger(from)) return status(res, 400, 'BadRequest', 'bad resourceVersion');
    if (from < this.compactedRv) {
      const gone = { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `too old resource version: ${from} (${this.compactedRv})`, reason: 'Expired', code: 410 };
      if (this.goneMode === 'status') return json(res, 410, gone);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'ERROR', object: gone }) + '\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    for (const e of this.events) if (e.rv > from) res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n');
    const w: OpenWatch = {
      res,
      bookmarks: request.allowWatchBookmarks,
      timer: setTimeout(() => {
        this.watches.delete(w);
        res.end();
      }, (request.timeoutSeconds ?? 1800) * 1000),
    };
    this.watches.add(w);
    res.on('close', () => {
      clearTimeout(w.timer);
      this.watches.delete(w);
    });
  }

  private async configMapRequest(method: string, namespace: string, name: string | undefined, body: unknown, res: http.ServerResponse): Promise<void> {
    if (method === 'GET' && name !== undefined) {
      const cm = this.configMaps.get(`${namespace}/${name}`);
      return cm ? json(res, 200, { kind: 'ConfigMap', apiVersion: 'v1', ...cm }) : status(res, 404, 'NotFound', `configmaps "${name}" not found`);
    }
    if (method !== 'POST' && method !== 'PUT') return status(res, 405, 'MethodNotAllowed', method);
    await this.beforeConfigMapWrite?.();
    const obj = body as { metadata?: { name?: string; resourceVersion?: string }; data?: Record<string, string> } | null;
    const objName = obj?.metadata?.name;
    if (typeof objName !== 'string' || (name !== undefined && objName !== name)) return status(res, 400, 'BadRequest', 'metadata.name missing or different');
    const key = `${namespace}/${objName}`;
    const existing = this.configMaps.get(key);
    if (method === 'POST' && existing) {
      this.conflicts++;
      return status(res, 409, 'AlreadyExists', `configmaps "${objName}" already exists`);
    }
    if (method === 'PUT') {
      if (!existing) return status(res, 404, 'NotFound', `configmaps "${objName}" not found`);
      if (obj?.metadata?.resourceVersion !== existing.metadata.resourceVersion) {
        this.conflicts++;
        return status(res, 409, 'Conflict', `Operation cannot be fulfilled on configmaps "${objName}": the object has been modified; please apply your changes to the latest version and try again`);
      }
    }
    const stored: ConfigMapObject = { metadata: { name: objName, namespace, resourceVersion: String(++this.rv) }, data: { ...(obj?.data ?? {}) } };
    this.configMaps.set(key, stored);
    this.configMapWrites++;
    json(res, method === 'POST' ? 201 : 200, { kind: 'ConfigMap', apiVersion: 'v1', ...stored });
  }
}

function json(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function status(res: http.ServerResponse, code: number, reason: string, message: string): void {
  json(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (chunks.length === 0) return null;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return null;
  }
}
