import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { NO_USERS } from '../../../src/web/server.js';
import { FIRST_USER_COMMAND, VIEWER_NOTE } from '../../../web/lib/words.js';
import { ROOT } from '../../helpers/paths.js';

describe('web: what the page says agrees with the server and the docs', () => {
  const docs = fs.readFileSync(path.join(ROOT, 'docs', 'dashboard.md'), 'utf8');

  it("the first user's command is the server's and the docs'", () => {
    assert.ok(NO_USERS.includes(`\`${FIRST_USER_COMMAND}\``), NO_USERS);
    assert.ok(docs.includes(`No user exists yet\nCreate the first one on the server, as root, then sign in with it:\n${FIRST_USER_COMMAND}\n`));
  });

  it("the viewer's note is quoted in the docs", () => {
    assert.ok(docs.replace(/\s+/g, ' ').includes(`("${VIEWER_NOTE}")`));
  });
});
