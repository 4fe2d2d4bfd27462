// The series query of the daemon API (`GET /v1/metrics/series?kind=&name=&
// metric=&since=1h&maxPoints=`), checked: a bad one is refused with a
// sentence naming the parameter and what it takes.
import { CarteError, ExitCode } from '../errors.js';
import { parseDuration } from '../schema/units.js';
import { FIELDS } from './history.js';
import type { SeriesKind, SeriesQuery } from './types.js';

const bad = (message: string) => new CarteError('usage', message, { exitCode: ExitCode.invalidInput });

/** The query from URL parameters; `now` anchors `since`. Default: the last hour, up to 500 points. */
export function parseSeriesQuery(params: URLSearchParams, now: number): SeriesQuery {
  const kind = params.get('kind') ?? 'instance';
  if (!(kind in FIELDS)) throw bad(`kind "${kind}" is not one of ${Object.keys(FIELDS).join(', ')}`);
  const fields = FIELDS[kind as SeriesKind];
  const name = params.get('name') ?? '';
  if (kind !== 'host' && !name) throw bad(`name is required for kind ${kind} (an ${kind === 'instance' ? 'instance' : 'service'} name)`);
  const metric = params.get('metric') ?? '';
  if (!fields.includes(metric)) throw bad(`metric "${metric}" is not one of ${fields.join(', ')}`);
  let fromMs = now - 3600_000;
  const since = params.get('since');
  if (since !== null) {
    const d = parseDuration(since);
    if (!d.ok) throw bad(`since: ${d.message}`);
    fromMs = now - d.value;
  }
  const num = (key: string): number | null => {
    const v = params.get(key);
    if (v === null) return null;
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw bad(`${key}: "${v}" is not a whole number${key === 'maxPoints' ? '' : ' of ms since the epoch'}`);
    return n;
  };
  fromMs = num('from') ?? fromMs;
  const toMs = num('to') ?? now;
  if (toMs < fromMs) throw bad('to is before from');
  const maxPoints = num('maxPoints') ?? 500;
  if (maxPoints < 1 || maxPoints > 10_000) throw bad(`maxPoints: ${maxPoints} is not between 1 and 10000`);
  return { kind: kind as SeriesKind, name: kind === 'host' ? '' : name, metric, fromMs, toMs, maxPoints };
}
