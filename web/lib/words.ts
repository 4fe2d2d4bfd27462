// Sentences the page shows that the server and the docs must agree with
// (test/unit/web/words.test.ts checks them against both).

/** What creates the first user: the server's 401 says the same (src/web/server.ts NO_USERS). */
export const FIRST_USER_COMMAND = 'carte user add NAME --role admin';

/** Shown to a viewer instead of the action buttons. */
export const VIEWER_NOTE = 'You can look, not act: actions need the operator role.';
