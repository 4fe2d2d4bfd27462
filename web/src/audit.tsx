// Admins: who did what, through which door, and how it ended (newest first).
import type { AuditResponse } from '../../src/web/types.js';
import { formatClock } from '../lib/format.js';
import { get } from './api.js';
import { ErrorNote, useCan, usePoll } from './common.js';

export function AuditPage() {
  const isAdmin = useCan('admin');
  const audit = usePoll(() => (isAdmin ? get<AuditResponse>('/api/audit') : Promise.resolve({ entries: [] })), [isAdmin], 10_000);
  if (!isAdmin) return <main><h1>Audit</h1><p role="alert">The audit log is for admins.</p></main>;
  const entries = [...(audit.data?.entries ?? [])].reverse();
  return (
    <main>
      <h1>Audit</h1>
      <ErrorNote error={audit.error} />
      {audit.data && entries.length === 0 && <p class="muted">Nothing recorded yet.</p>}
      {entries.length > 0 && (
        <div class="scroll"><table class="audit">
          <thead>
            <tr><th scope="col">Time</th><th scope="col">Who</th><th scope="col">Via</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Result</th><th scope="col">Detail</th></tr>
          </thead>
          <tbody>
            {entries.map((e, i) => (
              <tr key={`${e.at}-${i}`} class={e.result === 'ok' ? '' : 'warn'}>
                <td><time dateTime={e.at} title={e.at}>{e.at.slice(0, 10)} {formatClock(e.at)}</time></td>
                <td>{e.who.name} <span class="muted">({e.who.kind})</span></td>
                <td>{e.via}</td><td>{e.action}</td><td>{e.target}</td><td>{e.result}</td><td>{e.detail ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table></div>
      )}
    </main>
  );
}
