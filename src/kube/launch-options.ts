/**
 * The Kubernetes options of `loom launch`, validated at the edge. Imported by the launch command:
 * keep it free of sockets, timers and the rest of src/kube (which loads only with --kube-peers).
 *
 * In a cluster (`--kube-peers` alone) the API server is KUBERNETES_SERVICE_HOST:PORT over HTTPS,
 * authenticated with the pod's service-account token and CA; tests name a plain-HTTP server with
 * `--kube-api` (and a token file, if they want one checked).
 */
import { LoomError } from '../core/errors.js';

/** The subsystem's name: its report section and logger component. */
export const KUBE_SUBSYSTEM = 'kube';
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const DEFAULT_KUBE_NAMESPACE = 'kube-system';
export const DEFAULT_KUBE_CONFIGMAP = 'loom-peers';

/** Kubernetes object names (RFC 1123 subdomain, as node and ConfigMap names are). */
const OBJECT_NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** Namespace names (RFC 1123 label). */
const NAMESPACE_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export interface KubeLaunchConfig {
  /** Base URL of the API server, normalised ("https://10.96.0.1:443"), no path. */
  apiUrl: string;
  /** Bearer token file (re-read on every request: projected tokens rotate); undefined = none. */
  tokenFile: string | undefined;
  /** CA bundle for an https apiUrl; undefined = the system's CAs. */
  caFile: string | undefined;
  /**
   * Without caFile: the user's NODE_EXTRA_CA_CERTS, which the client adds to Node's own CAs
   * itself, because a background launch starts the daemon's Node without it (daemon/background.ts
   * `withExtraCaCertsHandedOver`). Not passed on the command line: read from the environment.
   */
  extraCaFile?: string | undefined;
  /** This host's Node name (downward API NODE_NAME): its own address is not a peer, and reclaim needs it. */
  nodeName: string | undefined;
  /** Where the peer ConfigMap lives. */
  namespace: string;
  configMap: string;
  /**
   * No --ipalloc-init was given: the daemon lists the nodes once before IPAM starts and uses
   * `consensus=<node count>` (the command line cannot know the cluster's size; consensus=1 on
   * every node would let each take the whole range).
   */
  sizeFromNodes: boolean;
  /** Reclaim the IPAM space of deleted nodes: on unless --no-kube-reclaim, and only when the node name is known. */
  reclaim: boolean;
}

/** As commander hands them over. */
export interface RawKubeOptions {
  kubePeers?: boolean;
  kubeApi?: string;
  kubeTokenFile?: string;
  kubeCaFile?: string;
  kubeNodeName?: string;
  kubeNamespace?: string;
  kubeConfigmap?: string;
  /** commander's `--no-kube-reclaim` */
  kubeReclaim?: boolean;
}

/**
 * Null without --kube-peers (and then any other --kube-* option is an error: it would do nothing).
 * Environment: KUBERNETES_SERVICE_HOST/PORT (in-cluster API), NODE_NAME, POD_NAMESPACE (flags win).
 * Throws ERR_INVALID_ARGUMENT naming the option.
 */
export function parseKubeOptions(raw: RawKubeOptions & { ipallocInit?: string | undefined }, env: NodeJS.ProcessEnv): KubeLaunchConfig | null {
  if (raw.kubePeers !== true) {
    const stray = (['kubeApi', 'kubeTokenFile', 'kubeCaFile', 'kubeNodeName', 'kubeNamespace', 'kubeConfigmap'] as const).find((k) => raw[k] !== undefined);
    if (stray !== undefined) throw new LoomError('ERR_INVALID_ARGUMENT', `--${kebab(stray)} needs --kube-peers`);
    return null;
  }
  const inCluster = raw.kubeApi === undefined;
  const apiUrl = inCluster ? inClusterUrl(env) : parseApiUrl(raw.kubeApi ?? '');
  const tokenFile = raw.kubeTokenFile ?? (inCluster ? `${SERVICE_ACCOUNT_DIR}/token` : undefined);
  const caFile = raw.kubeCaFile ?? (inCluster ? `${SERVICE_ACCOUNT_DIR}/ca.crt` : undefined);
  for (const [option, file] of [['--kube-token-file', tokenFile], ['--kube-ca-file', caFile]] as const) {
    if (file !== undefined && (file.length === 0 || file.length > 1024 || file.includes('\0'))) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${option}`);
  }
  const nodeNameText = raw.kubeNodeName ?? nonEmpty(env['NODE_NAME']);
  const nodeName = nodeNameText === undefined ? undefined : objectName(nodeNameText, '--kube-node-name');
  const namespace = raw.kubeNamespace ?? nonEmpty(env['POD_NAMESPACE']) ?? DEFAULT_KUBE_NAMESPACE;
  if (!NAMESPACE_RE.test(namespace)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --kube-namespace "${namespace.slice(0, 70)}"`);
  const configMap = objectName(raw.kubeConfigmap ?? DEFAULT_KUBE_CONFIGMAP, '--kube-configmap');
  const reclaim = raw.kubeReclaim ?? true;
  const extraCaFile = caFile === undefined ? nonEmpty(env['NODE_EXTRA_CA_CERTS']) : undefined;
  return { apiUrl, tokenFile, caFile, ...(extraCaFile === undefined ? {} : { extraCaFile }), nodeName, namespace, configMap, sizeFromNodes: raw.ipallocInit === undefined, reclaim: reclaim && nodeName !== undefined };
}

/** The launch arguments that reproduce `config` (for the re-executed background daemon). */
export function kubeArgs(config: KubeLaunchConfig | null): string[] {
  if (config === null) return [];
  return [
    '--kube-peers',
    '--kube-api', config.apiUrl,
    ...(config.tokenFile === undefined ? [] : ['--kube-token-file', config.tokenFile]),
    ...(config.caFile === undefined ? [] : ['--kube-ca-file', config.caFile]),
    ...(config.nodeName === undefined ? [] : ['--kube-node-name', config.nodeName]),
    '--kube-namespace', config.namespace,
    '--kube-configmap', config.configMap,
    ...(config.reclaim ? [] : ['--no-kube-reclaim']),
  ];
}

function inClusterUrl(env: NodeJS.ProcessEnv): string {
  const host = nonEmpty(env['KUBERNETES_SERVICE_HOST']);
  const port = nonEmpty(env['KUBERNETES_SERVICE_PORT']);
  if (host === undefined || port === undefined) {
    throw new LoomError('ERR_INVALID_ARGUMENT', '--kube-peers outside a pod: KUBERNETES_SERVICE_HOST/PORT are not set; name the API server with --kube-api URL');
  }
  // An IPv6 service address needs brackets in a URL.
  return parseApiUrl(`https://${host.includes(':') ? `[${host}]` : host}:${port}`);
}

/** http(s)://host[:port] with no path, query or credentials; returned in URL's normal form without a trailing slash. */
export function parseApiUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --kube-api "${text.slice(0, 80)}": expected http(s)://host[:port]`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new LoomError('ERR_INVALID_ARGUMENT', `invalid --kube-api "${text.slice(0, 80)}": expected http(s)://host[:port], no path or credentials`);
  }
  return url.origin;
}

export function isObjectName(text: unknown): text is string {
  return typeof text === 'string' && OBJECT_NAME_RE.test(text);
}

function objectName(text: string, option: string): string {
  if (!OBJECT_NAME_RE.test(text)) throw new LoomError('ERR_INVALID_ARGUMENT', `invalid ${option} "${text.slice(0, 70)}": a Kubernetes object name (lower-case letters, digits, "-" and ".")`);
  return text;
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text;
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
