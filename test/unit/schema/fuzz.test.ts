// Thousands of generated manifests, valid and broken in every way we could
// think of: loading must either return services or located problems, never
// throw, never point outside the file, and never let an out-of-bounds value
// through. Deterministic: a failure prints the seed that rebuilds its input.
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { formatProblem } from '../../../src/errors.js';
import { type LoadedService } from '../../../src/schema/load.js';
import { LIMITS } from '../../../src/schema/types.js';
import { parse } from '../../helpers/manifests.js';

/** mulberry32: small, fast, and the same sequence on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(readonly rand: () => number) {}
  int(n: number): number {
    return Math.floor(this.rand() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.rand() < p;
  }
}

const ODD_STRINGS = [
  '', ' ', 'NaN', 'nan', '.nan', '-.inf', '.inf', 'Infinity', '-Infinity', '1e999', '-0', '0x1F', '0o17', '1_000',
  'null', '~', 'true', 'yes', 'on', 'undefined', '__proto__', 'constructor', 'toString',
  'שלום עולם', 'مرحبا', '\u202Eevil\u202C', '🚀', '👨‍👩‍👧‍👦', 'e\u0301', '\u200B', '\uFEFF', '\u0000', '\u0007', '\uD800', 'Ａ',
  '5s', '0s', '-5s', '1.5s', '1e3s', '99999999999999999999d', '1h1h1h', '100ms', '24h', '25h', '1d', '7d',
  '500m', '0.5', '-1', '128Mi', '1Ei', '6Mi', '70%', '0%', '101%', '25%', '-25%',
  'http', 'tcp', 'udp', 'always', 'round-robin', '0 9 * * 1-5', '61 * * * *', '* * * * * * *',
  '127.0.0.1', '::1', '999.0.0.1', '/data', 'data', '/', 'login.local', '-bad.host-',
  'a'.repeat(41), 'x'.repeat(500), '"quoted"', "it's", 'a: b', '- x', '[1, 2', '{a', '&anchor', '*alias', '#comment', '%', '@', '`',
];

const NUMBERS = [0, 1, -1, 2, 7, 80, 1000, 1001, 65535, 65536, 2 ** 31, 2 ** 53 + 1, -(2 ** 53), 1e308, -1e308, 1e-308, 0.5, -0.0, NaN, Infinity, -Infinity];

/** Any YAML-representable value, shallow enough that stringify stays cheap. */
function anyValue(g: Gen, depth = 0): unknown {
  switch (g.int(depth > 2 ? 4 : 6)) {
    case 0: return g.pick(ODD_STRINGS);
    case 1: return g.pick(NUMBERS);
    case 2: return g.pick([true, false, null]);
    case 3: return g.chance(0.5) ? g.int(2000) - 1000 : `${g.int(100)}${g.pick(['s', 'ms', 'm', 'h', 'd', 'Mi', '%', 'm', ''])}`;
    case 4: return Array.from({ length: g.int(4) }, () => anyValue(g, depth + 1));
    default: return Object.fromEntries(Array.from({ length: g.int(4) }, () => [g.pick(['a', 'port', 'name', 'http', 'cron', 'min', 'max', ...ODD_STRINGS.slice(0, 20)]), anyValue(g, depth + 1)]));
  }
}

/** A plausible full Service, every field present, values sometimes valid and sometimes anything. */
function manifest(g: Gen): Record<string, unknown> {
  // Half the manifests get no random values at all, so that many of them load and the later checks run too.
  const wild = g.chance(0.5) ? 0 : g.pick([0.01, 0.05, 0.2]);
  const v = (valid: unknown) => (g.chance(wild) ? anyValue(g) : valid);
  // Values of the right type that a cross-field rule or a limit refuses, in some manifests only.
  const edgy = g.chance(0.5);
  const e = <T>(fine: readonly T[], refused: readonly T[]): T => (edgy && g.chance(0.3) ? g.pick(refused) : g.pick(fine));
  // Optional fields come and go; required ones go only in wild manifests.
  const maybe = (o: Record<string, unknown>, required: string[] = []) =>
    Object.fromEntries(Object.entries(o).filter(([k]) => (required.includes(k) ? !g.chance(wild) : g.chance(0.7))));
  const kind = g.pick(['http', 'tcp', 'exec'] as const);
  const min = e([0, 1, 2], [9]);
  const check = { http: { path: v('/health'), port: v(g.pick([8080, 'http'])) }, tcp: { port: v(8080) }, exec: { command: v([v('true')]) } }[kind];
  const name = v(g.pick(['web', 'login', 'redis', 'a', 'x-1']));
  const spec = maybe({
    image: v('nginx:1'),
    build: edgy && g.chance(0.2) ? v({ context: v('.'), cartefile: v('Cartefile'), args: v({ A: v('1') }) }) : undefined,
    command: v([v('node'), v('/app/server.js')]),
    args: v([v('--verbose')]),
    env: v({ PORT: v('8080'), DEBUG: v(true), [e(['OK', 'GREETING'], ['1BAD', 'שם', '🚀'])]: v(e(['x', 'שלום 🚀'], [''])) }),
    workingDir: v('/app'),
    user: v('1000:1000'),
    replicas: v(g.int(5)),
    resources: v(maybe({ cpu: v('500m'), memory: v('128Mi'), pids: v(256) })),
    ports: v([v(maybe({ name: v('http'), port: v(8080), protocol: v('tcp'), publish: v(g.chance(0.5) ? 8080 : { port: v(80), host: v('web.local'), address: v('127.0.0.1') }), balance: v('round-robin') }, ['name', 'port']))]),
    volumes: v([v(maybe({ ...(g.chance(0.5) ? { name: v('data') } : { hostPath: v('/srv/x') }), mountPath: v('/data'), readOnly: v(false) }, ['name', 'hostPath', 'mountPath']))]),
    health: v(maybe({
      [kind]: check,
      interval: v(e(['5s', '100ms', '1h'], ['50ms', '2h'])), timeout: v(e(['1s', '100ms'], ['0s', '20s'])),
      failureThreshold: v(3), startPeriod: v(e(['0s', '10s', '1h'], ['2h'])),
    }, [kind])),
    restart: v('always'),
    update: v(maybe({ maxSurge: v(e([1, '25%'], [0])), maxUnavailable: v(g.pick([0, '25%'])), progressDeadline: v(e(['2m', '24h'], ['2d'])) })),
    autoscale: v(maybe({
      min: v(min), max: v(e([8, 1000], [1001])), ...(edgy ? { cpu: v('70%'), memory: v('80%') } : {}),
      scaleDownDelay: v(e(['60s', '24h'], ['25h'])), ...(min === 0 || edgy ? { idleToZero: v(e(['5m', '24h'], ['8d'])) } : {}),
      schedule: v([v(maybe({ cron: v('0 9 * * 1-5'), duration: v(e(['8h', '24h'], ['2d'])), min: v(3), max: v(e([4, 8], [5000])) }, ['cron']))]),
    }, ['max'])),
    dependsOn: v([v(e(['redis'], ['web']))]),
    stopGracePeriod: v(e(['10s', '1h'], ['2h'])),
  }, ['image', 'ports']);
  if (g.chance(0.2)) spec[g.pick(ODD_STRINGS.slice(0, 30))] = anyValue(g);
  const doc: Record<string, unknown> = { apiVersion: v('carte/v1'), kind: v('Service'), metadata: v({ name, labels: v({ app: v('x') }) }), spec: v(JSON.parse(JSON.stringify(spec))) };
  return doc;
}

/** Text-level damage that the object route cannot produce. */
function damage(g: Gen, text: string): string {
  let out = text;
  for (let n = g.int(3); n >= 0; n--) {
    const at = g.int(out.length + 1);
    switch (g.int(7)) {
      case 0: out = out.slice(0, at) + out.slice(at + g.int(20)); break;
      case 1: out = out.slice(0, at) + g.pick(['"', "'", '[', '{', ']', '}', ':', '- ', '\t', '\n', '\r\n', '&a ', '*a', '!!binary ', '!x ', '? ', '---\n', '...\n', '#', '|\n', '>-\n', '%YAML 1.2\n', '<<: *a\n', '\u0000', '\uFEFF']) + out.slice(at); break;
      case 2: out = out.slice(0, at); break;
      case 3: out = out.replace(/\n/g, '\r\n'); break;
      case 4: out = `${out}---\n${out}`; break;
      case 5: out = out.slice(0, at) + '  '.repeat(g.int(4)) + out.slice(at); break;
      default: break;
    }
  }
  return out;
}

const SAMPLE = `apiVersion: carte/v1
kind: Service
metadata: { name: login, labels: { app: "métavers 🚀" } }
spec:
  image: metaverse/login:1.0
  command: [node, /app/server.js]
  env: { PORT: "8080", GREETING: 'שלום' }
  replicas: 2
  resources: { cpu: 500m, memory: 128Mi, pids: 256 }
  ports:
    - { name: http, port: 8080, publish: { port: 80, host: login.local } }
  health: { http: { path: /health, port: http }, interval: 5s, timeout: 1s }
  update: { maxSurge: 25%, maxUnavailable: 0, progressDeadline: 2m }
  autoscale: { min: 1, max: 8, cpu: 70%, scaleDownDelay: 60s,
               schedule: [{ cron: "0 9 * * 1-5", duration: 8h, min: 3 }] }
  stopGracePeriod: 30s
`;

/** Inputs that need one look each rather than thousands of random ones. */
function specials(): Array<[string, string]> {
  const valid = stringify({ apiVersion: 'carte/v1', kind: 'Service', metadata: { name: 'big' }, spec: { image: 'x' } });
  return [
    ['empty', ''], ['only ---', '---\n'], ['only a comment', '# nothing\n'], ['a BOM', `\uFEFF${valid}`], ['CR line ends', valid.replace(/\n/g, '\r')],
    ['1 MB image name', `${valid}`.replace('image: x', `image: ${'x'.repeat(1 << 20)}`)],
    ['1 MB unknown field', `${valid}  ${'y'.repeat(1 << 20)}: 1\n`],
    ['1 MB quoted, unclosed', `${valid}  env: { A: "${'é'.repeat(1 << 19)}`],
    ['10 000 nested flow lists', `${valid}status: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`],
    ['10 000 nested flow maps, unclosed', `${valid}status: ${'{a: '.repeat(10_000)}\n`],
    ['10 000 nested block lists', `${valid}status:\n  ${'- '.repeat(10_000)}x\n`],
    ['billion laughs', `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n${'bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`).join('\n')}\n`],
    ['billion laughs in spec', `${valid}  env: &e { A: "1", B: "2" }\n  args: &a [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n  command: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n`],
    ['an alias to itself', `${valid}status: &s [*s]\n`],
    ['an alias to an ancestor in spec', 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: a }\nspec: &s { image: x, build: { context: ".", args: *s } }\n'],
    ['an alias without anchor', `${valid}  replicas: *nope\n`],
    ['merge keys', `${valid}  env: { <<: { A: "1" }, B: "2" }\n`],
    ['tags', `${valid}  replicas: !!float 2\n  args: !!set { a, b }\n  env: !!omap [ { A: "1" } ]\n  user: !!binary aGVsbG8=\n  workingDir: !custom /x\n`],
    ['a complex key', `${valid}  ? [a, b]\n  : 1\n`],
    ['__proto__ and constructor keys', `${valid}  __proto__: { polluted: true }\n  env: { constructor: "x", __proto__: "y" }\nmetadata: { name: z }\n`],
    ['NUL and lone surrogates', `${valid}  env: { A: "\u0000\uD800" }\n`.replace('image: x', 'image: "\\0\\uD800"')],
    ['YAML 1.1 directive', `%YAML 1.1\n---\n${valid}  replicas: 0b11\n`],
    ['a huge integer', `${valid}  replicas: ${'9'.repeat(400)}\n  resources: { cpu: ${'9'.repeat(400)}, memory: ${'9'.repeat(400)} }\n`],
    ['1000 documents', Array.from({ length: 1000 }, (_, i) => valid.replace('name: big', `name: s${i}`)).join('---\n')],
  ];
}

function checkOutcome(label: string, text: string): ReturnType<typeof parse> {
  let result: ReturnType<typeof parse>;
  const context = () => `${label}; text starts ${JSON.stringify(text.slice(0, 300))}`;
  try {
    result = parse({ 'f.yaml': text });
  } catch (e) {
    assert.fail(`threw ${(e as Error).stack ?? String(e)}\n${context()}`);
  }
  const lines = text.split('\n');
  for (const p of result.problems) {
    const where = `${formatProblem(p)}\n${context()}`;
    assert.ok(p.position, `problem without a position: ${where}`);
    const { line, column } = p.position;
    assert.ok(Number.isInteger(line) && line >= 1 && line <= lines.length, `line out of the file (${lines.length} lines): ${where}`);
    assert.ok(Number.isInteger(column) && column >= 1 && column <= lines[line - 1]!.length + 1, `column out of line ${line}: ${where}`);
    assert.ok(p.message.length > 0, `empty message: ${where}`);
  }
  for (const s of result.services) withinLimits(s, context);
  return result;
}

/** What LIMITS promise the reconciler and scaler, for every service that loads. */
function withinLimits(s: LoadedService, context: () => string): void {
  const spec = s.object.spec;
  const fail = (what: string) => assert.fail(`${s.object.name}: ${what}\n${context()}`);
  const durations: Array<[string, number, number]> = [
    ['stopGracePeriod', spec.stopGracePeriodMs, LIMITS.stopGracePeriodMaxMs],
    ['progressDeadline', spec.update.progressDeadlineMs, LIMITS.progressDeadlineMaxMs],
  ];
  if (spec.health) {
    if (spec.health.intervalMs < LIMITS.healthIntervalMinMs) fail('interval below its minimum');
    if (!(spec.health.timeoutMs > 0 && spec.health.timeoutMs <= spec.health.intervalMs)) fail('timeout not within (0, interval]');
    durations.push(['interval', spec.health.intervalMs, LIMITS.healthIntervalMaxMs], ['startPeriod', spec.health.startPeriodMs, LIMITS.healthStartPeriodMaxMs]);
  }
  const a = spec.autoscale;
  if (a) {
    durations.push(['scaleDownDelay', a.scaleDownDelayMs, LIMITS.scaleDownDelayMaxMs], ['idleToZero', a.idleToZeroMs ?? 0, LIMITS.idleToZeroMaxMs]);
    for (const w of a.schedule) {
      durations.push(['schedule duration', w.durationMs, LIMITS.scheduleDurationMaxMs]);
      if ((w.min ?? 0) > LIMITS.replicasMax || (w.max ?? 0) > LIMITS.replicasMax) fail('schedule bounds above replicasMax');
    }
    if (a.max > LIMITS.replicasMax) fail('autoscale.max above replicasMax');
  }
  if (spec.replicas > LIMITS.replicasMax) fail('replicas above replicasMax');
  for (const [what, ms, max] of durations) if (!(Number.isFinite(ms) && ms >= 0 && ms <= max)) fail(`${what} ${ms} outside [0, ${max}]`);
}

describe('manifest loading under fuzzing', function () {
  this.timeout(30_000);
  const SEED = 0xca47e;

  it('random manifests, valid and broken: services or located problems, nothing thrown', () => {
    let loaded = 0;
    for (let i = 0; i < 2000; i++) {
      const seed = SEED + i;
      const g = new Gen(prng(seed));
      const docs = Array.from({ length: 1 + g.int(2) }, () => manifest(g));
      let text = docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
      if (g.chance(0.3)) text = damage(g, text);
      loaded += checkOutcome(`seed ${seed}`, text).services.length > 0 ? 1 : 0;
    }
    // The generator must keep producing valid services too, or it only tests the first check that fails.
    assert.ok(loaded > 100, `only ${loaded} of 2000 random texts loaded a service`);
  });

  it('a valid manifest truncated at every byte', () => {
    assert.deepEqual(parse({ 'f.yaml': SAMPLE }).problems.map(formatProblem), []);
    const bytes = Buffer.from(SAMPLE, 'utf8');
    for (let n = 0; n <= bytes.length; n++) checkOutcome(`first ${n} bytes of the sample`, bytes.subarray(0, n).toString('utf8'));
  });

  for (const [name, text] of specials()) {
    it(`special input: ${name}`, () => checkOutcome(name, text));
  }
});
