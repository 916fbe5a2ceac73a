// Definitions in RabbitMQ's format: GET /api/definitions exports, POST imports (merge: creates and
// updates, deletes nothing, as RabbitMQ); and the ctl methods behind `espresso ctl export`, `ctl diff`
// and `ctl apply` (desired state: the plan includes deletes). A file with any error applies nothing
// and the answer names each bad entry; a step refused while applying (a race with another change)
// stops the run and says which steps were applied.

import type { NodeContext } from '../broker/node-context.js';
import type { ClusterRpc } from '../cluster/rpc.js';
import { nodeId } from '../lib/ids.js';
import { exportDefinitions, planDefinitions, type Definitions, type Plan, type PlanStep } from '../model/index.js';
import type { Route } from './api-objects.js';
import { apiLimits, fail, requireAdmin, type Who } from './api-request.js';
import { jsonResponse, type HttpRequest, type HttpResponse } from './server.js';

export const DefinitionsMethod = {
  export: 'ctl.definitions-export',
  plan: 'ctl.definitions-plan',
  apply: 'ctl.definitions-apply',
} as const;

export interface DefinitionsDeps {
  readonly ctx: NodeContext;
  readonly version: string;
}

/** A plan as ctl prints it and the API answers it (the commands stay on the node). */
export interface PlanAnswer {
  readonly steps: Array<Omit<PlanStep, 'command'>>;
  readonly errors: string[];
  readonly ignored: string[];
  /** Set by apply: how many steps were applied, and the refusal that stopped it. */
  readonly applied?: number;
  readonly failed?: string;
}

export interface ApplyAnswer extends PlanAnswer {
  readonly applied: number;
}

function planOf(d: DefinitionsDeps, defs: Definitions, mode: 'merge' | 'exact'): Plan {
  if (typeof defs !== 'object' || defs === null || Array.isArray(defs)) return { steps: [], errors: ['the definitions must be a JSON object'], ignored: [] };
  return planDefinitions(d.ctx.metadata.state, defs, { mode, connection: { connectionId: 'definitions', nodeId: nodeId(d.ctx.nodeId) } });
}

function answerOf(plan: Plan): PlanAnswer {
  return { steps: plan.steps.map(({ action, kind, what, detail }) => ({ action, kind, what, detail })), errors: plan.errors, ignored: plan.ignored };
}

/** Applies the plan's steps in order (nothing when it has errors). */
export async function applyDefinitions(d: DefinitionsDeps, defs: Definitions, mode: 'merge' | 'exact'): Promise<ApplyAnswer> {
  await d.ctx.metadata.sync(); // the plan reads a state that holds every change committed before
  const plan = planOf(d, defs, mode);
  if (plan.errors.length > 0) return { ...answerOf(plan), applied: 0 };
  let applied = 0;
  for (const s of plan.steps) {
    const r = await d.ctx.metadata.apply(s.command);
    if (!r.ok) return { ...answerOf(plan), applied, failed: `${s.action} ${s.what}: ${r.replyText}` };
    if (r.deletedQueues.length > 0) d.ctx.queues.dropDeleted(r.deletedQueues);
    applied++;
  }
  return { ...answerOf(plan), applied };
}

/** Registers the ctl methods (export, plan, apply). */
export function serveDefinitions(rpc: ClusterRpc, d: DefinitionsDeps): void {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  rpc.handle(DefinitionsMethod.export, async () => {
    await d.ctx.metadata.sync();
    return enc.encode(JSON.stringify(exportDefinitions(d.ctx.metadata.state, d.version)));
  });
  rpc.handle(DefinitionsMethod.plan, async (_from, p) => {
    await d.ctx.metadata.sync();
    const { definitions } = JSON.parse(dec.decode(p)) as { definitions: Definitions };
    return enc.encode(JSON.stringify(answerOf(planOf(d, definitions, 'exact'))));
  });
  rpc.handle(DefinitionsMethod.apply, async (_from, p) => {
    const { definitions } = JSON.parse(dec.decode(p)) as { definitions: Definitions };
    return enc.encode(JSON.stringify(await applyDefinitions(d, definitions, 'exact')));
  });
}

async function importDefinitions(d: DefinitionsDeps, who: Who, req: HttpRequest): Promise<HttpResponse> {
  requireAdmin(who(req));
  const text = (await req.body(apiLimits.bodyBytesMax)).toString('utf8');
  let defs: unknown;
  try {
    defs = JSON.parse(text);
  } catch (e) {
    fail(400, 'bad_request', `failed_to_parse_json: ${(e as Error).message}`);
  }
  const r = await applyDefinitions(d, defs as Definitions, 'merge');
  if (r.errors.length > 0) fail(400, 'bad_request', `nothing imported: ${r.errors.join('; ')}`);
  if (r.failed !== undefined) fail(400, 'bad_request', `${r.applied} of ${r.steps.length} changes imported, then: ${r.failed}`);
  return { status: 204 };
}

export function definitionRoutes(d: DefinitionsDeps, who: Who): Route[] {
  return [
    ['GET', '/api/definitions', async (req) => {
      requireAdmin(who(req));
      await d.ctx.metadata.sync();
      const download = req.query.get('download');
      return jsonResponse(200, exportDefinitions(d.ctx.metadata.state, d.version),
        download !== null && download !== '' ? { 'content-disposition': `attachment; filename="${download.replace(/["\\\r\n]/g, '_')}"` } : {});
    }],
    ['POST', '/api/definitions', (req) => importDefinitions(d, who, req)],
  ];
}
