// Making an instance, step by step:
//
//   record → [overlay rootfs, user, volumes, /etc files, OCI spec] ‖ [ip netns add]
//          → [conmon (runc create)] ‖ [CNI attach → /etc/hosts with the address]
//          → unmount staged host volumes → record (address) → firewall
//          → runc start → record (started)
//
// A failed step removes whatever the earlier ones made (remove() is
// idempotent and works from any point), so a failed create leaves nothing.
// A carte killed between steps leaves a record (written first, atomically)
// that names everything the instance may have, for gc to clean.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { DriverError } from '../../errors.js';
import { formatMemory } from '../../schema/units.js';
import { spaceOf } from '../../util/disk.js';
import { faultPoint } from '../../util/fault.js';
import type { InstanceSpec, ObservedInstance } from '../driver.js';
import { remove } from './cleanup.js';
import type { DriverContext } from './context.js';
import type { ImageStore } from './images/store.js';
import { startMonitor } from './monitor.js';
import { observe } from './observe.js';
import { newPlacement, writeRecord, type InstanceRecord, type Placement } from './records.js';
import { resolveCapabilities } from './capabilities.js';
import { STAGING_FOLDER, stageHostVolume } from './host-volumes.js';
import { readImageFile } from './image-file.js';
import { mountOverlay, unmountAll } from './rootfs.js';
import { SECRETS_FOLDER, stageSecretVolume } from './secret-volumes.js';
import { buildSpec, resolveArgs, resolveEnv, resolveUser } from './spec.js';
import { refuseHostAccount } from './host-accounts.js';
import { claimVolumes } from './volumes.js';

/** Where a carte killed mid-create can stop (see src/util/fault.ts), in order. */
export const CREATE_FAULT_POINTS = ['create:record-written', 'create:bundle-and-netns', 'create:container-created', 'create:firewall-set', 'create:started'] as const;

// Hostname rules, and short enough for socket paths under /run.
export const INSTANCE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const ANNOTATION = 'carte.instance';

/**
 * Why `security.userns` is refused (measured on Debian 12: runc 1.1.5,
 * util-linux 2.38.1, kernel 6.18): `runc exec` into a user-namespaced
 * container fails to join carte's network namespace, which the host's user
 * namespace owns ("nsexec-1: failed to setns into net namespace: Operation
 * not permitted", runc#4390), so probes and `carte exec` would break; and
 * mount 2.38 ignores X-mount.idmap (2.39 has it), so layers cannot be
 * idmapped. docs/security.md has the details and the way forward.
 */
export const USERNS_UNSUPPORTED = 'security.userns is not supported yet: runc 1.1.5 cannot exec into a user namespace that joins carte\'s network namespace';

/** An instance's /etc/hosts: localhost, its own name, then service names (which the gateway serves). */
export function hostsFileText(name: string, ip: string | null, hosts: Record<string, string>): string {
  return [
    '127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ...(ip ? [`${ip}\t${name}`] : []),
    ...Object.entries(hosts).sort(([a], [b]) => (a < b ? -1 : 1)).map(([h, addr]) => `${addr}\t${h}`),
  ].join('\n') + '\n';
}

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(() => true, () => false);
}

/** Where the config of an instance with secret environment values lives: a tmpfs of its own in the instance's folder. */
export const SECRET_CONFIG_FOLDER = 'secret-config';

/**
 * Writes the bundle's config.json. It holds the process's environment, so
 * for an instance with secret environment values it must never reach a
 * disk: it is written to a small tmpfs mounted in the instance's folder
 * (root-only), and bundle/config.json is a symbolic link to it. runc reads it
 * through the link at create, and again at every `runc exec` (exec takes its
 * base process, env included, from the bundle), so the tmpfs lives as long
 * as the instance; remove() and gc unmount it with the instance's other
 * mounts. Not /run/carte: /run is not a tmpfs on every machine (it is a
 * folder of the root disk on this project's own server). Other instances
 * keep a plain file, readable after a reboot by whoever debugs.
 */
async function writeConfig(ctx: DriverContext, spec: InstanceSpec, config: Record<string, unknown>): Promise<void> {
  const bundled = ctx.paths.dir(spec.name, 'bundle', 'config.json');
  const text = JSON.stringify(config);
  if (!Object.keys(spec.secretEnv ?? {}).length) {
    await fsp.writeFile(bundled, text, { mode: 0o600 });
    return;
  }
  const dir = ctx.paths.dir(spec.name, SECRET_CONFIG_FOLDER);
  await fsp.mkdir(dir, { mode: 0o700 });
  const size = Math.ceil((Buffer.byteLength(text) + 65536) / 4096) * 4096;
  const options = ['nosuid', 'nodev', 'noexec', 'mode=0700', `size=${size}`];
  const mount = (opts: string[]) => ctx.runner.run('mount', ['-t', 'tmpfs', '-o', opts.join(','), 'carte-secret-config', dir], { step: 'mount the config tmpfs of', resource: spec.name });
  // noswap (Linux 6.4): not even a swap device sees the values. Older kernels refuse the option.
  await mount([...options, 'noswap']).catch(() => mount(options));
  const file = path.join(dir, 'config.json');
  await fsp.writeFile(file, text, { mode: 0o600 });
  await fsp.symlink(file, bundled);
}

/** New instances (their writable layers, logs, volumes) never eat the room the state file needs. */
function checkDiskReserve(ctx: DriverContext, name: string): void {
  const reserve = ctx.diskReserveBytes();
  if (reserve <= 0) return;
  const space = spaceOf(ctx.paths.home);
  if (!space || space.freeBytes >= reserve) return;
  throw new DriverError('create', `instance ${name}`,
    `only ${formatMemory(space.freeBytes)} free on ${space.mount} (holding CARTE_HOME), below the server policy's disk reserve of ${formatMemory(reserve)}`,
    { hint: 'free some space: "carte gc" removes unused images and layers' });
}

export async function create(ctx: DriverContext, spec: InstanceSpec): Promise<ObservedInstance> {
  const name = spec.name;
  const { paths } = ctx;
  if (!INSTANCE_NAME.test(name)) throw new DriverError('create', `instance "${name}"`, 'not a valid instance name (lowercase letters, digits, "-")');
  if (await exists(paths.dir(name))) throw new DriverError('create', `instance ${name}`, 'an instance with this name already exists');
  // Refused rather than ignored: running as real root while the manifest asked for a user namespace would be a lie.
  if (spec.security?.userns) throw new DriverError('create', `instance ${name}`, USERNS_UNSUPPORTED, { hint: 'see docs/security.md, "User namespaces"' });
  checkDiskReserve(ctx, name);
  // Before anything is made: a bridge that is another home's must change nothing.
  await ctx.network.claimBridge();
  // Also before anything is made: another source's volume is refused, and the instance leaves nothing.
  await claimVolumes(paths.volumesDir, spec);
  const started = performance.now();
  await fsp.mkdir(paths.dir(name), { recursive: true, mode: 0o700 });
  try {
    await createSteps(ctx, spec);
  } catch (e) {
    const report = await remove(ctx, name);
    if (report.failures.length) ctx.log.warn({ instance: name, failures: report.failures }, 'cleanup after a failed create left things behind');
    throw e;
  }
  ctx.log.debug({ instance: name, ms: Math.round(performance.now() - started) }, 'created');
  return (await observe(ctx, name))!;
}

// The critical path is kept short by overlapping independent steps:
//   [rootfs, user, volumes, spec] ‖ [ip netns add]
//   [conmon → runc create]        ‖ [CNI attach → /etc/hosts with the address]
//   runc start
// runc create needs the namespace to exist, not to be configured; the
// process only runs at runc start, when its address is in place.
async function createSteps(ctx: DriverContext, spec: InstanceSpec): Promise<void> {
  const name = spec.name;
  const { paths } = ctx;
  let mark = performance.now();
  const phase = (what: string) => {
    const now = performance.now();
    ctx.log.debug({ instance: name, phase: what, ms: Math.round((now - mark) * 10) / 10 }, 'create phase');
    mark = now;
  };
  const image = await ctx.images.get(spec.image);
  const place = newPlacement({ paths, bridge: ctx.network.opts.bridge, cgroupParent: ctx.cgroupParent }, name);
  const record: InstanceRecord = {
    name, service: spec.service, labels: spec.labels, image: spec.image, imageId: image.id,
    createdAt: new Date().toISOString(), startedAt: null, ip: null, netns: place.netns, cgroupPath: place.cgroupPath,
  };
  await writeRecord(paths, record);
  faultPoint('create:record-written');
  const etc = paths.dir(name, 'etc');
  const hostsFile = path.join(etc, 'hosts');
  const hostsText = (ip: string | null) => hostsFileText(name, ip, spec.hosts ?? {});

  const [config] = await Promise.all([prepareBundle(ctx, spec, image, place, etc, hostsText(null)), ctx.network.createNamespace(name, place.netns)]);
  await writeConfig(ctx, spec, config);
  phase('bundle and namespace');
  faultPoint('create:bundle-and-netns');

  const run = (...p: string[]) => paths.runDir(name, ...p);
  await Promise.all(['exit', 'persist', 'sock'].map((d) => fsp.mkdir(run(d), { recursive: true, mode: 0o700 })));
  const [, net] = await Promise.all([
    startMonitor({
      conmon: ctx.conmon, runtime: ctx.runtime.path, runtimeRoot: ctx.runtime.root, id: name,
      bundle: paths.dir(name, 'bundle'), pidFile: run('pid'), conmonPidFile: run('conmon.pid'),
      exitDir: run('exit'), persistDir: run('persist'), socketDir: run('sock'),
      logPath: paths.dir(name, 'container.log'), logMaxBytes: ctx.logMaxBytes,
    }),
    ctx.network.attach(name, place.netnsPath),
  ]);
  phase('runtime create and network');
  // The container holds its own mounts of the host volumes now: the staging
  // ones are not needed, and nothing of them stays in the host's namespace.
  if (spec.spec.volumes.some((v) => v.kind === 'host')) {
    const left = await unmountAll(ctx.runner, paths.dir(name, STAGING_FOLDER), name);
    if (left.length) throw new DriverError('unmount the staged host volumes of', name, `still mounted: ${left.join(', ')}`);
  }
  // The same for secret volumes: their tmpfs lives on in the container alone, and goes with it.
  if (spec.secretVolumes?.length) {
    const left = await unmountAll(ctx.runner, paths.dir(name, SECRETS_FOLDER), name);
    if (left.length) throw new DriverError('unmount the staged secret volumes of', name, `still mounted: ${left.join(', ')}`);
  }
  faultPoint('create:container-created');
  // Rewritten in place: the bind mount made at create refers to this same inode.
  await fsp.writeFile(hostsFile, hostsText(net.ip));
  record.ip = net.ip;
  record.veth = net.veth;
  record.mac = net.mac;
  // The firewall renders from records: this one must say its address, veth and MAC first.
  await writeRecord(paths, record);
  // Before the process runs: it may send only as itself, and reach only what it may.
  await ctx.network.firewall.sync();
  phase('firewall');
  faultPoint('create:firewall-set');
  await ctx.runtime.start(name);
  phase('start');
  faultPoint('create:started');
  record.startedAt = new Date().toISOString();
  await writeRecord(paths, record);
}

/** Rootfs mount, user, volumes, /etc files, and the OCI config (returned, not yet written). */
async function prepareBundle(
  ctx: DriverContext, spec: InstanceSpec, image: Awaited<ReturnType<ImageStore['get']>>, place: Placement, etc: string, hosts: string,
): Promise<Record<string, unknown>> {
  const name = spec.name;
  const { paths } = ctx;
  const rootfs = paths.dir(name, 'bundle', 'rootfs');
  await mountOverlay(ctx.runner, {
    layers: image.layers.map((d) => ctx.images.layerPath(d)),
    upper: paths.dir(name, 'upper'), work: paths.dir(name, 'work'), empty: paths.dir(name, 'empty'), target: rootfs, resource: name,
  });

  // Image files are read only when the user needs them, and only through
  // readImageFile: their content and links are the image author's (see image-file.ts).
  const userName = spec.spec.user ?? image.config.user;
  const imageFile = (file: string) => readImageFile(rootfs, file, { image: spec.image });
  const passwd = userName ? await imageFile('/etc/passwd') : null;
  const group = /:.*\D/.test(userName ?? '') ? await imageFile('/etc/group') : null;
  const user = resolveUser(userName, passwd, group);
  if ('error' in user) throw new DriverError('resolve the user of', name, user.error);
  await refuseHostAccount(ctx.runner, user.uid, { step: 'create', resource: `instance ${name}` });
  const security = spec.security ?? {};
  const capabilities = resolveCapabilities(name, security.capAdd, security.capDrop);

  const binds: Array<{ source: string; destination: string; readOnly: boolean }> = [
    { source: path.join(etc, 'hosts'), destination: '/etc/hosts', readOnly: true },
    { source: path.join(etc, 'hostname'), destination: '/etc/hostname', readOnly: true },
    { source: path.join(etc, 'resolv.conf'), destination: '/etc/resolv.conf', readOnly: true },
  ];
  for (const [i, v] of spec.spec.volumes.entries()) {
    if (v.kind === 'named') {
      // Made, and its owner checked and recorded, by claimVolumes before any step.
      const source = path.join(paths.volumesDir, v.name);
      binds.push({ source, destination: v.mountPath, readOnly: v.readOnly });
    } else {
      // Mounted by carte from an open descriptor, runc mounts the staging point (see host-volumes.ts).
      const staging = await stageHostVolume(ctx.runner, name, v, paths.home, paths.dir(name, STAGING_FOLDER, String(i)));
      binds.push({ source: staging, destination: v.mountPath, readOnly: v.readOnly });
    }
  }

  for (const [i, v] of (spec.secretVolumes ?? []).entries()) {
    // Read-only and after the other volumes: a secret cannot be written to, nor hidden under a volume.
    const staged = await stageSecretVolume(ctx.runner, name, v, paths.dir(name, SECRETS_FOLDER, String(i)), user);
    binds.push({ source: staged, destination: v.mountPath, readOnly: true });
  }

  await fsp.mkdir(etc, { recursive: true });
  const hostResolv = await fsp.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  await Promise.all([
    fsp.writeFile(path.join(etc, 'hosts'), hosts),
    fsp.writeFile(path.join(etc, 'hostname'), `${name}\n`),
    fsp.writeFile(path.join(etc, 'resolv.conf'), hostResolv.split('\n').filter((l) => /^(nameserver|search|options)\s/.test(l)).join('\n') + '\n'),
  ]);

  const args = resolveArgs(image.config, spec.spec.command, spec.spec.args);
  if (!args.length) throw new DriverError('create', name, `image ${spec.image} has no CMD or ENTRYPOINT`, { hint: 'set spec.command in the manifest' });
  return buildSpec({
    hostname: name,
    args,
    env: resolveEnv(image.config.env, { ...spec.spec.env, ...spec.secretEnv }, name),
    cwd: spec.spec.workingDir ?? image.config.workingDir ?? '/',
    uid: user.uid, gid: user.gid, additionalGids: [],
    rootfs: 'rootfs',
    netnsPath: place.netnsPath,
    cgroupsPath: place.cgroupPath,
    cpuMillis: spec.spec.resources.cpuMillis,
    memoryBytes: spec.spec.resources.memoryBytes,
    pids: spec.spec.resources.pids,
    binds,
    rlimits: ctx.rlimits,
    capabilities,
    readOnlyRootfs: security.readOnlyRootfs ?? false,
    annotations: { [ANNOTATION]: name, 'carte.service': spec.service, 'carte.labels': JSON.stringify(spec.labels) },
  });
}
