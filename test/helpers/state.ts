// Builds StateData for pure tests of the desired-state API.
import { commitApply, planApply, type ApplyRequest } from '../../src/api/apply.js';
import { emptyState, type StateData } from '../../src/store/state.js';
import { serviceDoc, services, yaml } from './manifests.js';

export const T0 = new Date('2026-11-01T10:00:00Z');

/** State after applying `docs` from `source` (all in one apply). */
export function stateWith(docs: Record<string, unknown>[], source = 'cli', data: StateData = emptyState()): StateData {
  const req: ApplyRequest = { services: services({ 'seed.yaml': yaml(...docs) }), source, prune: false };
  const plan = planApply(data, req);
  if (plan.problems.length) throw new Error(`seed is invalid: ${JSON.stringify(plan.problems)}`);
  commitApply(data, req, plan, T0);
  return data;
}

export function request(docs: Record<string, unknown>[], opts: Partial<Omit<ApplyRequest, 'services'>> = {}): ApplyRequest {
  return { services: services({ 'new.yaml': yaml(...docs) }), source: 'cli', prune: false, ...opts };
}

export { serviceDoc };
