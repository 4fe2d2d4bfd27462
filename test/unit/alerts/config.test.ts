// The daemon config's alerts: section: defaults, overrides, and located
// problems word for word.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DaemonConfigError, loadAlertsConfig, parseAlertsConfig } from '../../../src/alerts/config.js';
import { DEFAULT_RULES } from '../../../src/alerts/rules.js';
import { formatProblem } from '../../../src/errors.js';
import { ROOT, tempDir } from '../../helpers/paths.js';

const problems = (text: string) => parseAlertsConfig(text, 'daemon.yaml').problems.map(formatProblem);

describe('alerts: the daemon config section', () => {
  it('without an alerts section (or an empty one): the default rules, no webhooks', () => {
    for (const text of ['', 'watch: [./manifests]\n', 'alerts:\n']) {
      const { config, problems: p } = parseAlertsConfig(text, 'daemon.yaml');
      assert.deepEqual(p, []);
      assert.deepEqual(config, { intervalMs: 5000, rules: DEFAULT_RULES, webhooks: [] });
    }
  });

  it('overrides each field of a rule on its own, and reads webhooks', () => {
    const { config, problems: p } = parseAlertsConfig(`watch: [./m]
alerts:
  interval: 1s
  webhooks:
    - url: http://127.0.0.1:9000/hook
      headers: { Authorization: "Bearer abc" }
      timeout: 2s
    - url: HTTPS://alerts.example.org/carte?token=x
  rules:
    memory-high: { threshold: 0.8, for: 5s }
    disk-low: { enabled: false }
    not-converged: { clear: 0s }
`, 'daemon.yaml');
    assert.deepEqual(p, []);
    assert.equal(config!.intervalMs, 1000);
    assert.deepEqual(config!.webhooks, [
      { url: 'http://127.0.0.1:9000/hook', headers: { Authorization: 'Bearer abc' }, timeoutMs: 2000 },
      { url: 'https://alerts.example.org/carte?token=x', headers: {}, timeoutMs: 5000 },
    ]);
    assert.deepEqual(config!.rules['memory-high'], { enabled: true, forMs: 5000, clearMs: 30_000, threshold: 0.8, severity: 'warning' });
    assert.deepEqual(config!.rules['disk-low'], { ...DEFAULT_RULES['disk-low'], enabled: false });
    assert.deepEqual(config!.rules['not-converged'], { ...DEFAULT_RULES['not-converged'], clearMs: 0 });
    assert.deepEqual(config!.rules['crash-loop'], DEFAULT_RULES['crash-loop']);
  });

  it('refuses bad values with their file:line:column, in reading order', () => {
    assert.deepEqual(problems(`watch: [./m]
alerts:
  rules:
    memory-high: { threshold: 1.5, for: 5 }
    memry-high: { for: 1m }
    crash-loop: { threshold: 0.5 }
    disk-low: { threshold: 0, enabled: "yes" }
  webhooks:
    - url: ftp://example.org/hook
    - timeout: 1s
`), [
      'daemon.yaml:4:31: alerts.rules.memory-high.threshold: 1.5 is above the maximum of 1',
      'daemon.yaml:4:41: alerts.rules.memory-high.for: 5 has no unit (write e.g. 5s)',
      'daemon.yaml:5:5: alerts.rules.memry-high: unknown field "memry-high" (did you mean "memory-high"?)',
      'daemon.yaml:6:19: alerts.rules.crash-loop.threshold: unknown field "threshold" (known fields: enabled, for, clear)',
      'daemon.yaml:7:28: alerts.rules.disk-low.threshold: 0 is below the minimum of 0',
      'daemon.yaml:7:40: alerts.rules.disk-low.enabled: expected true or false, got "yes"',
      'daemon.yaml:9:12: alerts.webhooks[0].url: "ftp://example.org/hook" is not an http:// or https:// URL',
      'daemon.yaml:10:7: alerts.webhooks[1]: missing required field "url"',
    ]);
  });

  it('refuses what the schema cannot say: a URL that does not parse, header names and values, timeouts out of range', () => {
    assert.deepEqual(problems(`alerts:
  interval: 10m
  webhooks:
    - url: "http://[::1/hook"
    - url: http://127.0.0.1:9/hook
      timeout: 2m
      headers: { "Bad Name": x, X-Token: "a\\r\\nInjected: 1" }
`), [
      'daemon.yaml:2:13: alerts.interval: 10m is outside 100ms to 5m',
      'daemon.yaml:4:12: alerts.webhooks[0].url: "http://[::1/hook" is not a valid URL',
      'daemon.yaml:6:16: alerts.webhooks[1].timeout: 2m is outside 100ms to 1m',
      'daemon.yaml:7:18: alerts.webhooks[1].headers.Bad Name: "Bad Name" is not a valid header name',
      'daemon.yaml:7:42: alerts.webhooks[1].headers.X-Token: a header value cannot hold a line break',
    ]);
  });

  it('the daemon refuses to start on a bad file: every problem, exit code 2', () => {
    const dir = tempDir();
    try {
      const file = path.join(dir, 'daemon.yaml');
      fs.writeFileSync(file, 'alerts:\n  webhooks: { url: http://x }\n');
      assert.throws(() => loadAlertsConfig(file), (e: DaemonConfigError) => {
        assert.equal(e.message, `1 problem in the daemon config ${file}; the daemon did not start`);
        assert.deepEqual(e.details, [`${file}:2:13: alerts.webhooks: expected a list, got a mapping`]);
        assert.equal(e.exitCode, 2);
        return true;
      });
      assert.throws(() => loadAlertsConfig(path.join(dir, 'nope.yaml')), /^UsageError: daemon: cannot read config .*nope\.yaml: ENOENT/);
      assert.deepEqual(loadAlertsConfig(undefined).webhooks, []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the example in docs/observability.md is valid, and its error sample is what carte prints', () => {
    const text = fs.readFileSync(path.join(ROOT, 'docs', 'observability.md'), 'utf8');
    const alerts = text.slice(text.indexOf('## Alerts'));
    const example = /```yaml\n(alerts:[\s\S]*?)```/.exec(alerts)![1]!;
    const { config, problems: p } = parseAlertsConfig(example, 'doc');
    assert.deepEqual(p, []);
    assert.equal(config!.webhooks.length, 2);
    const [bad, printed] = [...alerts.matchAll(/```text\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const lines = printed!.trimEnd().split('\n').slice(1, -1);
    assert.deepEqual(parseAlertsConfig(bad!, '/etc/carte/daemon.yaml').problems.map(formatProblem), lines);
  });
});
