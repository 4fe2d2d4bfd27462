// The docs are part of the feature: their examples must stay valid.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { formatProblem } from '../../src/errors.js';
import { parse } from '../helpers/manifests.js';
import { ROOT } from '../helpers/paths.js';

describe('docs', () => {
  it('every yaml example in docs/manifests.md is a valid manifest set', () => {
    const text = fs.readFileSync(path.join(ROOT, 'docs', 'manifests.md'), 'utf8');
    const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assert.ok(blocks.length >= 1);
    blocks.forEach((block, i) => {
      const r = parse({ [`docs/manifests.md block ${i + 1}`]: block });
      assert.deepEqual(r.problems.map(formatProblem), []);
      assert.ok(r.services.length >= 1);
    });
  });
});
