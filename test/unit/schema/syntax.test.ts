import assert from 'node:assert/strict';
import { shapeOf } from '../../../src/schema/syntax.js';
import { problemLines, serviceDoc, yaml } from '../../helpers/manifests.js';

// A valid Service whose env block ends the document, so each case appends one broken line.
const HEAD = `apiVersion: carte/v1
kind: Service
metadata:
  name: web
spec:
  image: nginx:1
  command: [nginx, -g, daemon off;]
  env:
`;

describe('YAML syntax errors point where the broken construct starts', () => {
  const cases: Array<[string, string, string[]]> = [
    ['an unclosed double quote in the middle of a file', `${HEAD}    GREETING: "hello\n    OTHER: x\n`, [
      'x.yaml:9:15: YAML syntax: Missing closing "quote',
    ]],
    ['an unclosed double quote at the very end of a file', `${HEAD}    GREETING: "hello`, [
      'x.yaml:9:15: YAML syntax: Missing closing "quote',
    ]],
    ['an unclosed single quote in the middle of a file', `${HEAD}    GREETING: 'hello\n    OTHER: x\n`, [
      "x.yaml:9:15: YAML syntax: Missing closing 'quote",
    ]],
    ['an unclosed single quote at the end of a file', `${HEAD}    GREETING: 'it''s\n`, [
      "x.yaml:9:15: YAML syntax: Missing closing 'quote",
    ]],
    ['an unclosed [ followed by more lines', `${HEAD}    A: x\n  args: [--port, 80\n  replicas: 2\n`, [
      'x.yaml:10:9: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]],
    ['an unclosed { on the last line', `${HEAD}    A: x\n  resources: { cpu: 500m\n`, [
      'x.yaml:10:14: YAML syntax: Flow map in block collection must be sufficiently indented and end with a }',
    ]],
    ['nested unclosed brackets, each at its own opening', `${HEAD}    A: x\n  ports: [{ port: 80\n`, [
      'x.yaml:10:10: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
      'x.yaml:10:11: YAML syntax: Flow map in block collection must be sufficiently indented and end with a }',
    ]],
    ['an unclosed quote inside a bracket', `${HEAD}    A: x\n  args: [--name, "web\n  replicas: 2\n`, [
      'x.yaml:10:9: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
      'x.yaml:10:18: YAML syntax: Missing closing "quote',
    ]],
    ['an unclosed [ as the whole document', '[apiVersion, kind\n', [
      'x.yaml:1:1: YAML syntax: Flow sequence must end with a ]',
    ]],
    ['a tab used as indentation', `${HEAD}\tA: x\n`, [
      'x.yaml:9:1: YAML syntax: Tabs are not allowed as indentation',
    ]],
    ['a bad indentation', `${HEAD}    A: x\n   B: y\n`, [
      'x.yaml:10:1: YAML syntax: All mapping items must start at the same column',
    ]],
    ['two documents, the second broken', `${yaml(serviceDoc('ok'))}---\n${HEAD}    GREETING: "hello\n`, [
      'x.yaml:16:15: YAML syntax: Missing closing "quote',
    ]],
    ['CRLF line endings', `${HEAD}    GREETING: "hello\n    OTHER: x\n`.replace(/\n/g, '\r\n'), [
      'x.yaml:9:15: YAML syntax: Missing closing "quote',
    ]],
    ['CRLF line endings, an unclosed [', `${HEAD}    A: x\n  args: [--port, 80\n`.replace(/\n/g, '\r\n'), [
      'x.yaml:10:9: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]],
    ['an error at the end of a file with blank lines after it stays on its last line', 'apiVersion: carte/v1\nkind: Service\nkind: Service\n\n\n', [
      'x.yaml:3:1: YAML syntax: Map keys must be unique',
    ]],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => assert.deepEqual(problemLines({ 'x.yaml': text }), expected));
  }

  it('keeps the other documents of a file: the first one above still loads', () => {
    const text = `${yaml(serviceDoc('ok'))}---\n${HEAD}    GREETING: "hello\n`;
    assert.equal(problemLines({ 'x.yaml': text }).length, 1);
  });
});

describe('YAML that would exhaust the parser', () => {
  const cases: Array<[string, string, string[]]> = [
    ['10 000 nested flow lists', `apiVersion: carte/v1\nstatus: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`, [
      'x.yaml:2:72: lists and mappings nested more than 64 deep: a Service needs at most 5 levels (remove the extra nesting)',
    ]],
    ['10 000 nested flow lists, never closed', `apiVersion: carte/v1\nstatus: ${'['.repeat(10_000)}\n`, [
      'x.yaml:2:72: lists and mappings nested more than 64 deep: a Service needs at most 5 levels (remove the extra nesting)',
    ]],
    ['deeply nested block lists', `status:\n  - ${'- '.repeat(100)}x\n`, [
      'x.yaml:2:129: lists and mappings nested more than 64 deep: a Service needs at most 5 levels (remove the extra nesting)',
    ]],
    ['deeply indented mappings', Array.from({ length: 200 }, (_, i) => `${' '.repeat(i)}k:`).join('\n'), [
      'x.yaml:65:65: lists and mappings nested more than 64 deep: a Service needs at most 5 levels (remove the extra nesting)',
    ]],
    ['aliases that expand a little text into a lot (billion laughs)', [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
      '',
    ].join('\n'), [
      'x.yaml:2:8: YAML aliases here would expand to more than 100 copies of values (write the values out instead of nesting aliases)',
    ]],
    ['an alias naming no anchor', 'apiVersion: carte/v1\nkind: *kind\n', [
      'x.yaml:2:7: YAML alias *kind names no anchor before it (write &kind on an earlier value, or write the value out)',
    ]],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => assert.deepEqual(problemLines({ 'x.yaml': text }), expected));
  }

  it('accepts a valid manifest at the nesting limit of its status block', () => {
    // The root mapping is depth 1, so 63 lists under status reach exactly 64.
    const doc = `${yaml(serviceDoc('ok'))}status: ${'['.repeat(63)}${']'.repeat(63)}\n`;
    assert.deepEqual(problemLines({ 'x.yaml': doc }), []);
    assert.equal(shapeOf(doc, 64).tooDeepAt, null);
    assert.notEqual(shapeOf(doc, 63).tooDeepAt, null);
  });
});
