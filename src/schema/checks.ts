// Rules that JSON Schema cannot say well: fields that exclude or require each
// other inside one Service. They run only on documents that passed the schema,
// so every field has the right type here.
import { isRegistryReference, parseReference } from './image-reference.js';
import path from 'node:path';
import type { ManifestProblem } from '../errors.js';
import { defaultPortName } from './canonical.js';
import { formatPath, type Locator, type PathSegment } from './locate.js';
import type { ServiceManifest } from './service-schema.js';
import { DEFAULTS, LIMITS } from './types.js';
import { formatDuration, parseDuration } from './units.js';
import { LINUX_CAPABILITIES, normalizeCapability } from './capabilities.js';
import { closest } from './validate.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** Where the runtime mounts the kernel's file systems; a volume there would replace or shadow them. */
const KERNEL_MOUNTS = ['/proc', '/sys', '/dev'];

export function checkService(m: ServiceManifest, locator: Locator): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const report = (segments: PathSegment[], message: string, key = false) =>
    problems.push({ position: locator.locate(segments, { key }), path: formatPath(segments), message });
  const s = m.spec;

  for (const key of Object.keys(m.metadata.labels ?? {})) {
    if (!LABEL_KEY.test(key)) report(['metadata', 'labels', key], `"${key}" is not a valid label key (letters, digits, "-", "_", ".", optionally prefixed by "domain/")`, true);
  }

  if (s.image === undefined && s.build === undefined) report(['spec'], 'set either "image" (an image name:tag) or "build" (a Cartefile context)');
  if (s.image !== undefined && s.build !== undefined) report(['spec', 'build'], 'set "image" or "build", not both (build already names the image after the service)', true);
  if (s.pullPolicy !== undefined && s.image === undefined) report(['spec', 'pullPolicy'], 'pullPolicy applies to "image", and this service has none (a build is made here)', true);
  // A local name is never pulled: a pull policy asking for pulls would be silently ignored.
  if (s.pullPolicy !== undefined && s.pullPolicy !== 'Never' && s.image !== undefined && !isRegistryReference(s.image) && parseReference(s.image)) {
    report(['spec', 'pullPolicy'], `${s.pullPolicy} needs a registry reference; "${s.image}" names a local image, which carte never pulls (write e.g. docker.io/${s.image.includes('/') ? '' : 'library/'}${s.image} to pull it from Docker Hub, or remove pullPolicy)`);
  }

  // A numeric uid or gid the kernel can hold (runc fails with raw JSON otherwise); 2^32-1 is "no id".
  if (s.user !== undefined) {
    const ids = s.user.split(':').filter((part) => /^\d+$/.test(part));
    if (ids.some((id) => Number(id) > 4294967294)) report(['spec', 'user'], `"${s.user}" has an id above 4294967294, the largest a Linux uid or gid may be`);
  }

  for (const key of Object.keys(s.env ?? {})) {
    if (!ENV_NAME.test(key)) report(['spec', 'env', key], `"${key}" is not a valid environment variable name (letters, digits and "_", not starting with a digit)`, true);
  }

  // Ports: names and (port, protocol) pairs unique; HTTP routing only over TCP.
  const ports = s.ports ?? [];
  const names = new Map<string, number>();
  const numbers = new Map<string, number>();
  ports.forEach((p, i) => {
    const name = p.name ?? defaultPortName(p);
    if (names.has(name)) report(['spec', 'ports', i, 'name'], `port name "${name}" is already used by ports[${names.get(name)}]`);
    else names.set(name, i);
    const key = `${p.port}/${p.protocol ?? 'tcp'}`;
    if (numbers.has(key)) report(['spec', 'ports', i, 'port'], `port ${key} is already listed as ports[${numbers.get(key)}]`);
    else numbers.set(key, i);
    if (typeof p.publish === 'object' && p.publish.host !== undefined && p.protocol === 'udp') {
      report(['spec', 'ports', i, 'publish', 'host'], 'routing by Host header needs protocol: tcp');
    }
  });

  const mounts = new Map<string, string>();
  const checkMount = (list: 'volumes' | 'secrets', i: number, mountPath: string) => {
    // Normalized: "/proc/sys/../.." is "/" (an outside test had it admitted).
    const mount = path.posix.normalize(mountPath).replace(/\/+$/, '') || '/';
    const kernel = KERNEL_MOUNTS.find((k) => mount === k || mount.startsWith(`${k}/`));
    if (mount === '/') report(['spec', list, i, 'mountPath'], 'cannot mount a volume over the container\'s root "/"');
    else if (kernel) report(['spec', list, i, 'mountPath'], `cannot mount a volume over or inside ${kernel}: the kernel's view there is carte's to set up (mount it elsewhere, e.g. /data)`);
    if (mounts.has(mount)) report(['spec', list, i, 'mountPath'], `"${mount}" is already mounted by ${mounts.get(mount)}`);
    else mounts.set(mount, `${list}[${i}]`);
  };
  (s.volumes ?? []).forEach((v, i) => {
    if ((v.name === undefined) === (v.hostPath === undefined)) {
      report(['spec', 'volumes', i], 'set exactly one of "name" (a named volume) or "hostPath" (a host folder)');
    }
    checkMount('volumes', i, v.mountPath);
  });
  (s.secrets ?? []).forEach((v, i) => {
    checkMount('secrets', i, v.mountPath);
    const paths = new Map<string, number>();
    (v.items ?? []).forEach((item, j) => {
      const at = ['spec', 'secrets', i, 'items', j, 'path'];
      const file = path.posix.normalize(item.path);
      if (file === '.' || file.endsWith('/') || file.split('/').includes('..')) {
        report(at, `${JSON.stringify(item.path)} must name a file inside mountPath (no "..", not a folder)`);
      } else if (paths.has(file)) {
        report(at, `"${file}" is already the path of items[${paths.get(file)}]`);
      } else {
        paths.set(file, j);
      }
    });
  });

  const h = s.health;
  if (h) {
    const kinds = (['http', 'tcp', 'exec'] as const).filter((k) => h[k] !== undefined);
    if (kinds.length !== 1) report(['spec', 'health'], kinds.length === 0 ? 'set one check: http, tcp or exec' : `set one check, not ${kinds.join(' and ')}`);
    for (const kind of ['http', 'tcp'] as const) {
      const ref = h[kind]?.port;
      if (typeof ref === 'string' && !names.has(ref)) {
        report(['spec', 'health', kind, 'port'], `no port is named "${ref}"${names.size ? ` (named ports: ${[...names.keys()].join(', ')})` : ' (give a number, or name a port under spec.ports)'}`);
      }
    }
  }

  const u = s.update;
  if (u && isZero(u.maxSurge ?? 1) && isZero(u.maxUnavailable ?? 0)) {
    report(['spec', 'update'], 'maxSurge and maxUnavailable cannot both be 0: a rolling update could never make progress');
  }

  const a = s.autoscale;
  if (a) {
    const min = a.min ?? 1;
    if (min > a.max) report(['spec', 'autoscale', 'min'], `min (${min}) is greater than max (${a.max})`);
    if (a.cpu !== undefined && s.resources?.cpu === undefined) report(['spec', 'autoscale', 'cpu'], 'a CPU target is a percentage of the CPU limit: set spec.resources.cpu');
    if (a.memory !== undefined && s.resources?.memory === undefined) report(['spec', 'autoscale', 'memory'], 'a memory target is a percentage of the memory limit: set spec.resources.memory');
    if (a.cpu === undefined && a.memory === undefined && a.idleToZero === undefined && (a.schedule ?? []).length === 0) {
      report(['spec', 'autoscale'], 'nothing to scale on: set cpu, memory, idleToZero or schedule');
    }
    if (a.idleToZero !== undefined && min !== 0) report(['spec', 'autoscale', 'idleToZero'], `scaling to zero needs autoscale.min: 0 (it is ${min})`);
    if (a.idleToZero !== undefined && ports.length === 0) report(['spec', 'autoscale', 'idleToZero'], 'an idle service is woken by traffic on its ports: add spec.ports');
    if (s.replicas !== undefined && (s.replicas < min || s.replicas > a.max)) {
      report(['spec', 'replicas'], `${s.replicas} is outside the autoscale range ${min}–${a.max} (remove replicas, or change autoscale)`);
    }
    (a.schedule ?? []).forEach((w, i) => {
      const wmin = w.min ?? min;
      const wmax = w.max ?? a.max;
      if (w.min === undefined && w.max === undefined) report(['spec', 'autoscale', 'schedule', i], 'a schedule window needs min, max or both');
      if (wmin > wmax) report(['spec', 'autoscale', 'schedule', i, 'min'], `min (${wmin}) is greater than max (${wmax})`);
    });
  }

  checkCapabilities(m, report);

  (s.dependsOn ?? []).forEach((d, i) => {
    if (d === m.metadata.name) report(['spec', 'dependsOn', i], 'a service cannot depend on itself');
  });
  checkDurations(m, report);
  return problems;
}

/** Capability names must be Linux's (with or without CAP_, any case); ALL only in drop; none both added and dropped. */
function checkCapabilities(m: ServiceManifest, report: (segments: PathSegment[], message: string) => void): void {
  const c = m.spec.capabilities;
  if (!c) return;
  const seen = { add: new Map<string, number>(), drop: new Map<string, number>() };
  for (const list of ['add', 'drop'] as const) {
    (c[list] ?? []).forEach((name, i) => {
      const at = ['spec', 'capabilities', list, i];
      if (name.trim().toUpperCase().replace(/^CAP_/, '') === 'ALL') {
        if (list === 'add') report(at, 'ALL cannot be added: name each capability to add (ALL is only for drop)');
        else seen.drop.set('ALL', i);
        return;
      }
      const cap = normalizeCapability(name);
      if (cap === null) {
        const guess = closest(name.trim().toUpperCase().replace(/^CAP_/, ''), [...LINUX_CAPABILITIES, ...(list === 'drop' ? ['ALL'] : [])]);
        report(at, `${JSON.stringify(name)} is not a Linux capability${guess ? ` (did you mean "${guess}"?)` : ' (see capabilities(7), e.g. NET_BIND_SERVICE)'}`);
        return;
      }
      const first = seen[list].get(cap);
      if (first !== undefined) report(at, `${cap} is already listed as capabilities.${list}[${first}]`);
      else seen[list].set(cap, i);
    });
  }
  for (const [cap, i] of seen.add) {
    const j = seen.drop.get(cap);
    if (j !== undefined) report(['spec', 'capabilities', 'add', i], `${cap} is both added and dropped (capabilities.drop[${j}]): keep one`);
  }
}

/**
 * Durations the reconciler and scaler turn into timers or look-back windows,
 * bounded by LIMITS. The values are still the strings the user wrote (the
 * schema only checked that they parse); messages quote them as written.
 */
function checkDurations(m: ServiceManifest, report: (segments: PathSegment[], message: string) => void): void {
  const s = m.spec;
  const ms = (v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const p = parseDuration(v);
    return p.ok ? p.value : dflt; // cannot fail: the schema parsed it already
  };
  const atMost = (segments: PathSegment[], value: string | undefined, max: number, why: string, advice = '') => {
    if (value !== undefined && ms(value, 0) > max) {
      report(segments, `${value.trim()} is longer than ${formatDuration(max)}: ${why} (use at most ${formatDuration(max)}${advice})`);
    }
  };

  const atLeast = (segments: PathSegment[], value: string | undefined, min: number, why: string) => {
    if (value !== undefined && ms(value, min) < min) {
      report(segments, `${value.trim()} is shorter than ${formatDuration(min)}: ${why} (use at least ${formatDuration(min)})`);
    }
  };

  const h = s.health;
  if (h) {
    const interval = ms(h.interval, DEFAULTS.healthIntervalMs);
    if (h.interval !== undefined && interval < LIMITS.healthIntervalMinMs) {
      report(['spec', 'health', 'interval'], `${h.interval.trim()} is shorter than ${formatDuration(LIMITS.healthIntervalMinMs)}: checks that often would keep the daemon busy (use at least ${formatDuration(LIMITS.healthIntervalMinMs)})`);
    }
    atMost(['spec', 'health', 'interval'], h.interval, LIMITS.healthIntervalMaxMs, 'a failing instance would go unnoticed for that long');
    if (h.timeout !== undefined) {
      const timeout = ms(h.timeout, DEFAULTS.healthTimeoutMs);
      if (timeout <= 0) {
        report(['spec', 'health', 'timeout'], `${h.timeout.trim()} must be longer than 0: a check with no time to answer always fails (use e.g. ${formatDuration(Math.min(DEFAULTS.healthTimeoutMs, interval))})`);
      } else if (timeout > interval && interval >= LIMITS.healthIntervalMinMs && interval <= LIMITS.healthIntervalMaxMs) {
        // An interval outside its limits is reported already; "use at most <that interval>" would be bad advice.
        const shown = formatDuration(interval);
        report(['spec', 'health', 'timeout'], `${h.timeout.trim()} is longer than the interval (${shown}): a check must end before the next one starts (use at most ${shown})`);
      }
    }
    atMost(['spec', 'health', 'startPeriod'], h.startPeriod, LIMITS.healthStartPeriodMaxMs, 'failures would be ignored for that long after every start');
  }
  atMost(['spec', 'stopGracePeriod'], s.stopGracePeriod, LIMITS.stopGracePeriodMaxMs, 'a stopping instance could hold its resources and delay updates for that long');
  atLeast(['spec', 'update', 'progressDeadline'], s.update?.progressDeadline, LIMITS.progressDeadlineMinMs, 'every rollout would fail before an instance could start');
  atMost(['spec', 'update', 'progressDeadline'], s.update?.progressDeadline, LIMITS.progressDeadlineMaxMs, 'a stuck rollout would go unreported for that long');
  const a = s.autoscale;
  if (a) {
    atMost(['spec', 'autoscale', 'scaleDownDelay'], a.scaleDownDelay, LIMITS.scaleDownDelayMaxMs, 'the service would stay scaled up that long after the load is gone');
    atMost(['spec', 'autoscale', 'idleToZero'], a.idleToZero, LIMITS.idleToZeroMaxMs, 'an idle service would hold its resources that long');
    (a.schedule ?? []).forEach((w, i) => {
      atLeast(['spec', 'autoscale', 'schedule', i, 'duration'], w.duration, LIMITS.scheduleDurationMinMs, 'windows are matched minute by minute, a shorter one may never be open');
      atMost(['spec', 'autoscale', 'schedule', i, 'duration'], w.duration, LIMITS.scheduleDurationMaxMs,
        'the scaler looks back over every minute of a window on each decision', '; to cover several days, let the cron fire on each of them');
    });
  }
}

function isZero(v: number | string | undefined): boolean {
  return v === 0 || v === '0%';
}
