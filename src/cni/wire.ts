/**
 * What the plugin sends the router and what it gets back, as plain types. The router's route
 * table (./api.ts) holds the same shapes as zod schemas; a unit test checks every request the
 * plugin builds against them (the plugin itself does not load zod).
 *
 *   POST /cni/add     AddRequest   -> CniAttachmentJson
 *   POST /cni/check   CheckRequest -> CniAttachmentJson
 *   POST /cni/del     DelRequest   -> { released: boolean }
 *   POST /cni/gc      GcRequest    -> { released: AttachmentKey[] }
 *   GET  /cni/status                -> { ready: boolean, reason?: string }
 *   POST /cni/exec    {env, stdin}    -> text: `exit <n>\n<stdout>` | `fallback <reason>\n`
 *                                        (the native shim's one call; see ./exec.ts)
 */

export const CNI_PATHS = { add: '/cni/add', check: '/cni/check', del: '/cni/del', gc: '/cni/gc', status: '/cni/status', exec: '/cni/exec' } as const;

export interface AttachmentKey {
  containerId: string;
  ifname: string;
}

export interface AddRequest extends AttachmentKey {
  network: string;
  netns: string;
  /** K8S_POD_NAME from CNI_ARGS: the DNS name to register. */
  podName?: string;
  /** Given when a delegated IPAM plugin chose the address ("a.b.c.d/n"); else Loom IPAM allocates. */
  address?: string;
  /** The delegated IPAM's gateway, if any. */
  gateway?: string;
}

export interface CheckRequest extends AttachmentKey {
  network: string;
  netns: string;
}

export interface DelRequest extends AttachmentKey {
  network: string;
  /** Absent when the runtime gave none (the namespace may be gone). */
  netns?: string;
}

export interface GcRequest {
  network: string;
  valid: AttachmentKey[];
}

/** The router's answer to add/check: what the plugin turns into a CNI result. */
export interface CniAttachmentJson extends AttachmentKey {
  network: string;
  netns: string;
  hostVeth: string;
  /** The container interface's MAC. */
  mac: string;
  /** "a.b.c.d/n" */
  cidr: string;
  gateway?: string;
  dns?: { nameservers: string[]; search: string[] };
  /** Routes the router installed in the container besides the address's own subnet route. */
  routes: Array<{ dst: string; gw?: string }>;
}

export interface DelResponse {
  released: boolean;
}

export interface GcResponse {
  released: AttachmentKey[];
}

export interface StatusResponse {
  ready: boolean;
  reason?: string;
}
