// What every source does with a set of manifest texts: validate, apply as
// that source (pruning only its own objects), and record the outcome. A bad
// set changes nothing that runs; its located errors go into the source's
// status and, once per distinct error, into an event.
import { applyManifests, type ReusedContext } from '../../api/apply.js';
import { CarteError, formatProblem, ManifestError } from '../../errors.js';
import type { AdmissionContext } from '../../policy/admit.js';
import { parseManifests, type ManifestText } from '../../schema/load.js';
import { recordEvent, type SourceId } from '../../store/state.js';
import type { Store } from '../../store/store.js';
import { openSealedSecrets } from '../../secrets/sealed.js';
import type { SecretVault } from '../../secrets/vault.js';

/**
 * What a source's sets are applied under: the server policy (admission) and,
 * for SealedSecrets, the vault whose key opens them. Without a vault, a set
 * holding a SealedSecret is refused.
 */
export type SourceContext = AdmissionContext & { vault?: SecretVault };

export interface SyncOutcome {
  ok: boolean;
  /** e.g. `service/login configured`, or the error lines. */
  lines: string[];
}

export async function recordSourceError(store: Store, id: SourceId, message: string, commit: string | null): Promise<void> {
  await store.update((data) => {
    const prev = data.sources[id];
    if (prev?.lastError !== message) {
      recordEvent(data, new Date(), { type: 'Warning', object: `source/${id}`, reason: 'SyncFailed', message: `${commit ? `commit ${commit.slice(0, 12)}: ` : ''}${message.split('\n').join('; ')}` });
    }
    data.sources[id] = { id, lastSync: prev?.lastSync ?? null, commit: prev?.commit ?? null, lastError: message };
  });
}

/**
 * Validates, admits under the server policy and applies a source's whole set.
 * A refusal (invalid or not admitted) changes nothing: the last good set keeps running.
 */
export async function syncTexts(store: Store, id: SourceId, texts: ManifestText[], commit: string | null, admission: SourceContext, reuseContexts?: ReadonlyMap<string, ReusedContext>): Promise<SyncOutcome> {
  try {
    const { services, sealedSecrets, problems } = parseManifests(texts);
    if (problems.length) throw new ManifestError(problems);
    const { vault } = admission;
    if (sealedSecrets.length && !vault) {
      throw new ManifestError(sealedSecrets.map((s) => ({ position: s.locate(['kind']), path: 'kind', message: 'SealedSecrets are opened only by carte daemon (this source has no secret key)' })));
    }
    // Opened before anything is planned: a value that does not open refuses the whole set, like any bad manifest.
    const opened = sealedSecrets.length ? await openSealedSecrets(sealedSecrets, await vault!.key(), id) : { secrets: [], problems: [] };
    if (opened.problems.length) throw new ManifestError(opened.problems);
    const { changes, secrets } = await applyManifests(store, { services, secrets: opened.secrets, source: id, prune: true, commit, admission, reuseContexts }, { vault });
    const lines = [
      ...secrets.filter((c) => c.action !== 'unchanged').map((c) => `secret/${c.name} ${c.action}`),
      ...changes.filter((c) => c.action !== 'unchanged').map((c) => `service/${c.name} ${c.action}`),
    ];
    return { ok: true, lines };
  } catch (e) {
    if (!(e instanceof CarteError)) throw e;
    const lines = e instanceof ManifestError ? e.problems.map(formatProblem) : [e.message, ...e.details];
    await recordSourceError(store, id, lines.join('\n'), commit);
    return { ok: false, lines };
  }
}
