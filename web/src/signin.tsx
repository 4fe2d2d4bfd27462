// Sign-in. With no user at all there is nothing to sign in with (carte has no
// default password): the page says the one command that creates the first admin.
import { useState } from 'preact/hooks';
import type { SessionInfo } from '../../src/web/types.js';
import { FIRST_USER_COMMAND } from '../lib/words.js';
import { post } from './api.js';

export function SignIn({ usersExist, onSignedIn }: { usersExist: boolean; onSignedIn: (s: SessionInfo) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (ev: Event) => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await post<SessionInfo>('/api/login', { name, password }));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setPassword('');
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin">
      <h1>carte</h1>
      {!usersExist && (
        <section class="notice" aria-labelledby="first-user">
          <h2 id="first-user">No user exists yet</h2>
          <p>Create the first one on the server, as root, then sign in with it:</p>
          <pre><code>{FIRST_USER_COMMAND}</code></pre>
        </section>
      )}
      <form onSubmit={submit} aria-label="Sign in">
        <label>
          User name
          <input name="name" autocomplete="username" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
        {error && <p class="status error" role="alert">{error}</p>}
      </form>
    </main>
  );
}
