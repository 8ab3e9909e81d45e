/**
 * The part of `loom report` the demo and the end-to-end tests read, parsed from the CLI's JSON
 * output (untrusted text) with zod. Unknown fields are ignored so the report can grow.
 */
import { z } from 'zod';
import { LoomError } from '../core/errors.js';

const peerRef = z.object({ name: z.string(), nickname: z.string() });

const reportSchema = z.object({
  router: z.object({
    name: z.string(),
    nickname: z.string(),
    peers: z.array(
      z.object({
        name: z.string(),
        nickname: z.string(),
        connections: z.array(z.object({ name: z.string(), nickname: z.string(), address: z.string(), outbound: z.boolean(), established: z.boolean() })),
      }),
    ),
    connections: z.array(
      z.object({
        address: z.string(),
        outbound: z.boolean(),
        state: z.string(),
        info: z.string(),
        peer: peerRef.optional(),
        errorCode: z.string().optional(),
      }),
    ),
    routes: z.object({
      unicast: z.array(z.object({ destination: z.string(), via: z.string(), hops: z.number() })),
    }),
  }),
  /** Absent when the router runs without a data plane. */
  dataplane: z
    .object({
      lastError: z.string().nullable(),
      peers: z.array(z.object({ peer: z.string(), path: z.string(), via: z.string().optional(), reason: z.string().optional(), macs: z.number() })),
    })
    .optional(),
  /** The host's own address on the Loom bridge; DNS serves there once `dns` is true. */
  'host-address': z.object({ cidr: z.string().nullable(), dns: z.boolean() }).optional(),
});

export type LoomReport = z.infer<typeof reportSchema>;
export type ReportConnection = LoomReport['router']['connections'][number];
export type ReportPeerPath = NonNullable<LoomReport['dataplane']>['peers'][number];

export function parseReport(text: string): LoomReport {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new LoomError('ERR_PROTOCOL', 'loom report did not print JSON', { cause: err, detail: { text: text.slice(0, 200) } });
  }
  const parsed = reportSchema.safeParse(json);
  if (!parsed.success) throw new LoomError('ERR_PROTOCOL', `loom report has an unexpected shape: ${parsed.error.message.slice(0, 300)}`);
  return parsed.data;
}

/** The established connection to the peer named `name`, if any. */
export function establishedTo(report: LoomReport, name: string): ReportConnection | undefined {
  return report.router.connections.find((c) => c.state === 'established' && c.peer?.name === name);
}

export function routeTo(report: LoomReport, name: string): { via: string; hops: number } | undefined {
  return report.router.routes.unicast.find((r) => r.destination === name);
}
