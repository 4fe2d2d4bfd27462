// The dashboard page: signs in, then shows the overview, a service or the
// audit log by the address's #fragment; one EventSource feeds live events to
// every view (the browser reconnects by itself, sending Last-Event-ID).
import 'uplot/dist/uPlot.min.css';
import '../app.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { AlertsResponse, EventRow, SessionInfo } from '../../src/web/types.js';
import { formatClock } from '../lib/format.js';
import { mergeEvents } from '../lib/series.js';
import { get, onUnauthorized, post, setCsrf } from './api.js';
import { AuditPage } from './audit.js';
import { SessionContext, StatusLine, useAction, useCan, usePoll } from './common.js';
import { Overview } from './overview.js';
import { ServicePage } from './service.js';
import { SignIn } from './signin.js';

type Route = { view: 'overview' } | { view: 'service'; name: string } | { view: 'audit' };

function parseRoute(hash: string): Route {
  const m = /^#\/services\/([^/]+)$/.exec(hash);
  if (m) return { view: 'service', name: decodeURIComponent(m[1]!) };
  if (hash === '#/audit') return { view: 'audit' };
  return { view: 'overview' };
}

function titleOf(route: Route): string {
  return route.view === 'service' ? `${route.name} — carte` : route.view === 'audit' ? 'Audit — carte' : 'Services — carte';
}

/** The view in the address's #fragment; on a change, the title follows and focus moves to the new heading (as a page load would). */
function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => {
      setRoute(parseRoute(location.hash));
      requestAnimationFrame(() => {
        const h1 = document.querySelector<HTMLElement>('main h1');
        if (h1) {
          h1.tabIndex = -1;
          h1.focus();
        }
      });
    };
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  useEffect(() => {
    document.title = titleOf(route);
  }, [route]);
  return route;
}

type Live = 'connecting' | 'live' | 'reconnecting';

/** Events from /api/events/stream, merged by id; `tick` changes on each new one so views reload. */
function useEventStream(): { events: EventRow[]; tick: number; live: Live } {
  const [events, setEvents] = useState<EventRow[]>([]);
  const [tick, setTick] = useState(0);
  const [live, setLive] = useState<Live>('connecting');
  useEffect(() => {
    // lastEventId=0: start with the events the daemon keeps; on a reconnect the browser's
    // Last-Event-ID header (which the server prefers) resumes after the last one seen.
    const es = new EventSource('/api/events/stream?lastEventId=0');
    es.onopen = () => setLive('live');
    es.onerror = () => setLive('reconnecting');
    // Events come in bursts (the kept ones at connect, a rollout's dozen): one render and one
    // refresh of the views per burst, not per event.
    let pending: EventRow[] = [];
    let flush: ReturnType<typeof setTimeout> | undefined;
    es.onmessage = (m) => {
      try {
        pending.push(JSON.parse(m.data) as EventRow);
      } catch {
        return; // not an event: nothing to show
      }
      flush ??= setTimeout(() => {
        const batch = pending;
        pending = [];
        flush = undefined;
        setEvents((list) => mergeEvents(list, batch));
        setTick((t) => t + 1);
      }, 50);
    };
    return () => {
      es.close();
      if (flush) clearTimeout(flush);
    };
  }, []);
  return { events, tick, live };
}

function AlertsBanner({ tick }: { tick: number }) {
  const alerts = usePoll(() => get<AlertsResponse>('/api/alerts'), [], 10_000, tick);
  const active = alerts.data?.active ?? [];
  if (active.length === 0) return null;
  return (
    <section class="alerts-banner" role="alert" aria-label="Firing alerts">
      <strong>{active.length} alert{active.length === 1 ? '' : 's'} firing</strong>
      <ul>
        {active.map((a) => (
          <li key={a.id} class={`alert-${a.severity}`}>
            <span class="sev">{a.severity}</span> <strong>{a.rule}</strong> {a.object}: {a.message} <span class="muted">since {formatClock(a.firedAt)}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Shell({ session, onSignOut }: { session: SessionInfo; onSignOut: () => void }) {
  const route = useRoute();
  const { events, tick, live } = useEventStream();
  const canAct = useCan('operator');
  const isAdmin = useCan('admin');
  const sync = useAction();
  const user = session.user!;
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">carte</a>
        <nav aria-label="Main">
          <a href="#/" aria-current={route.view === 'overview' ? 'page' : undefined}>Services</a>
          {isAdmin && <a href="#/audit" aria-current={route.view === 'audit' ? 'page' : undefined}>Audit</a>}
        </nav>
        <span class={`live live-${live}`} title="live events">{live === 'live' ? '● live' : live === 'connecting' ? '○ connecting' : '○ reconnecting'}</span>
        {canAct && <button type="button" onClick={() => sync.run('/api/sync')} disabled={sync.busy}>Sync now</button>}
        <span class="who">{user.name} <span class="tag">{user.role}</span></span>
        <button type="button" onClick={onSignOut}>Sign out</button>
      </header>
      {sync.outcome && <div class="sync-status"><StatusLine outcome={sync.outcome} /></div>}
      <AlertsBanner tick={tick} />
      {route.view === 'overview' && <Overview events={events} eventTick={tick} />}
      {route.view === 'service' && <ServicePage key={route.name} name={route.name} events={events} eventTick={tick} />}
      {route.view === 'audit' && <AuditPage />}
    </>
  );
}

function App() {
  const [session, setSession] = useState<SessionInfo | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () =>
    get<SessionInfo>('/api/session').then(
      (s) => { setCsrf(s.csrf); setSession(s); setError(null); },
      (e: Error) => setError(e.message),
    );
  useEffect(() => {
    onUnauthorized(() => { setCsrf(null); void load(); });
    void load();
  }, []);
  const signIn = (s: SessionInfo) => { setCsrf(s.csrf); setSession(s); };
  const signOut = async () => {
    await post('/api/logout').catch(() => {});
    setCsrf(null);
    await load();
  };
  if (!session) return <main><h1>carte</h1>{error ? <p role="alert" class="status error">{error}</p> : <p class="muted">Loading…</p>}</main>;
  if (!session.user) return <SignIn usersExist={session.usersExist} onSignedIn={signIn} />;
  return (
    <SessionContext.Provider value={session}>
      <Shell session={session} onSignOut={signOut} />
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
