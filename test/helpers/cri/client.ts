/**
 * A small CRI v1 client, speaking to a container runtime's RuntimeService as kubelet does
 * (gRPC over a unix socket), with the subset of runtime.v1 in ./runtime-v1.proto (field numbers
 * as the published k8s.io/cri-api api.proto). Test code only: @grpc/grpc-js and
 * @grpc/proto-loader are devDependencies.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The proto sits beside this file's source; from dist/ walk up to the checkout's test/helpers/cri. */
function protoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    for (const candidate of [join(dir, 'runtime-v1.proto'), join(dir, 'test', 'helpers', 'cri', 'runtime-v1.proto')]) {
      if (existsSync(candidate)) return candidate;
    }
    dir = dirname(dir);
  }
  throw new Error('runtime-v1.proto not found above ' + fileURLToPath(import.meta.url));
}

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}

export interface PortMapping {
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  containerPort: number;
  hostPort: number;
  hostIp?: string;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  logDirectory?: string;
  dnsConfig?: { servers?: string[]; searches?: string[]; options?: string[] };
  portMappings?: PortMapping[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: { cgroupParent?: string };
}

export type PodSandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export interface PodSandboxStatus {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  createdAt: string;
  network: { ip: string; additionalIps: Array<{ ip: string }> } | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface PodSandboxStatusResponse {
  status: PodSandboxStatus;
  /** JSON strings; containerd's verbose details are under "info". */
  info: Record<string, string>;
}

export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  labels: Record<string, string>;
}

export interface VersionResponse {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

/** A gRPC error from the runtime: `code` is the gRPC status (2 UNKNOWN, 5 NOT_FOUND...). */
export interface CriError extends Error {
  code: number;
  details: string;
}

type Unary = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, reply: unknown) => void) => void;

let definition: grpc.GrpcObject | undefined;
function runtimeServiceClass(): grpc.ServiceClientConstructor {
  definition ??= grpc.loadPackageDefinition(protoLoader.loadSync(protoPath(), { keepCase: false, longs: String, enums: String, defaults: true }));
  const runtime = definition.runtime as grpc.GrpcObject;
  return (runtime.v1 as grpc.GrpcObject).RuntimeService as grpc.ServiceClientConstructor;
}

export class CriClient {
  private readonly client: grpc.Client;

  /** `address`: "unix:///path/to/containerd.sock". */
  constructor(
    readonly address: string,
    private readonly timeoutMs = 60_000,
  ) {
    const Service = runtimeServiceClass();
    this.client = new Service(address, grpc.credentials.createInsecure());
  }

  private call<T>(method: string, request: unknown): Promise<T> {
    const fn = (this.client as unknown as Record<string, Unary>)[method];
    if (fn === undefined) return Promise.reject(new Error(`no CRI method ${method}`));
    return new Promise((resolve, reject) => {
      fn.call(this.client, request, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (err, reply) => (err ? reject(err) : resolve(reply as T)));
    });
  }

  version(): Promise<VersionResponse> {
    return this.call('version', { version: 'v1' });
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ''): Promise<string> {
    const reply = await this.call<{ podSandboxId: string }>('runPodSandbox', { config, runtimeHandler });
    return reply.podSandboxId;
  }

  async podSandboxStatus(podSandboxId: string, verbose = false): Promise<PodSandboxStatusResponse> {
    return this.call('podSandboxStatus', { podSandboxId, verbose });
  }

  async stopPodSandbox(podSandboxId: string): Promise<void> {
    await this.call('stopPodSandbox', { podSandboxId });
  }

  async removePodSandbox(podSandboxId: string): Promise<void> {
    await this.call('removePodSandbox', { podSandboxId });
  }

  async listPodSandbox(filter: { id?: string; labelSelector?: Record<string, string> } = {}): Promise<PodSandbox[]> {
    const reply = await this.call<{ items: PodSandbox[] }>('listPodSandbox', { filter });
    return reply.items;
  }

  close(): void {
    this.client.close();
  }
}

/** containerd's verbose sandbox info: the pause process and its network namespace path. */
export interface ContainerdSandboxInfo {
  pid: number;
  netnsPath: string | null;
  cniResult: unknown;
}

/** Reads containerd's `info` JSON of a verbose PodSandboxStatus. */
export function containerdSandboxInfo(reply: PodSandboxStatusResponse): ContainerdSandboxInfo {
  const raw = reply.info.info;
  if (raw === undefined) throw new Error('PodSandboxStatus carries no "info" (not verbose, or not containerd)');
  const info = JSON.parse(raw);
  const namespaces: Array<{ type: string; path?: string }> = info?.runtimeSpec?.linux?.namespaces ?? [];
  const net = namespaces.find((n) => n.type === 'network');
  if (typeof info.pid !== 'number') throw new Error('containerd sandbox info has no pid');
  return { pid: info.pid, netnsPath: net?.path ?? null, cniResult: info.cniResult ?? null };
}
