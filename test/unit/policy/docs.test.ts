// docs/policy.md's examples must stay valid, and its first example is the built-in policy.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { formatProblem } from '../../../src/errors.js';
import { parsePolicy } from '../../../src/policy/load.js';
import { DEFAULT_POLICY } from '../../../src/policy/policy.js';
import { ROOT } from '../../helpers/paths.js';

describe('docs/policy.md', () => {
  const text = fs.readFileSync(path.join(ROOT, 'docs', 'policy.md'), 'utf8');
  const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

  it('every yaml example is a valid policy file', () => {
    assert.ok(blocks.length >= 2);
    blocks.forEach((block, i) => assert.deepEqual(parsePolicy(block, `block ${i + 1}`).problems.map(formatProblem), []));
  });

  it('the first example is the built-in policy', () => {
    const shown = parsePolicy(blocks[0]!, 'block 1').policy!;
    assert.deepEqual(shown.rules, DEFAULT_POLICY.rules);
    assert.deepEqual(shown.sources, []);
  });
});
