// docs/dashboard.md quotes the server's messages and limits: they must stay what the server says.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../helpers/paths.js';
import { LOGIN_PER_ADDRESS } from '../../../src/web/routes-auth.js';
import { LOGIN_FAILURES, NO_USERS } from '../../../src/web/server.js';
import { SESSION_TTL_MS } from '../../../src/web/sessions.js';
import { DEFAULT_HTTP } from '../../../src/web/address.js';

describe('docs: the dashboard', () => {
  const text = fs.readFileSync(path.join(ROOT, 'docs', 'dashboard.md'), 'utf8').replace(/\n/g, ' ');

  it('quotes the messages and figures the server uses', () => {
    assert.ok(text.includes(NO_USERS.replace(/`/g, '\\`')), 'the no-user message');
    assert.ok(text.includes('the x-csrf-token header is missing or wrong: reload the page (scripts: use a bearer token)'));
    assert.ok(text.includes(`default | \`${DEFAULT_HTTP}\``));
    assert.ok(text.includes(`expiring after ${SESSION_TTL_MS / 3600_000} hours`));
    assert.ok(text.includes(`${LOGIN_PER_ADDRESS.max} a minute from one address`));
    assert.ok(text.includes(`${LOGIN_FAILURES.limit} wrong passwords for one name in ${LOGIN_FAILURES.windowMs / 60_000} minutes`));
  });
});
