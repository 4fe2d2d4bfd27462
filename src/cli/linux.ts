// The composition root for the Linux driver: the one place the CLI builds
// it, from CARTE_HOME and the environment. Everything else sees `Driver`.
import path from 'node:path';
import { CarteError } from '../errors.js';
import { checkHostTools, LinuxDriver } from '../drivers/linux/driver.js';
import { findExecutable, Runner } from '../drivers/linux/exec.js';
import { ImageBuilder } from '../drivers/linux/images/build.js';
import { ImageStore } from '../drivers/linux/images/store.js';
import { pullImage, type RegistryAccess } from '../drivers/linux/images/registry.js';
import { HomePaths, REGISTRY_RUN_DIR } from '../drivers/linux/records.js';
import { RegistryCredentials } from '../registry/credentials.js';
import type { ServerPolicy } from '../policy/policy.js';
import type { Context } from './context.js';

/** Driver settings a deployment may change, from the environment. */
export function driverSettings() {
  return {
    runtime: process.env.CARTE_RUNTIME || undefined,
    conmon: process.env.CARTE_CONMON || undefined,
    bridge: process.env.CARTE_BRIDGE || undefined,
    subnet: process.env.CARTE_SUBNET || undefined,
    cgroupParent: process.env.CARTE_CGROUP_PARENT || undefined,
  };
}

/**
 * The Linux driver. Commands that converge (the daemon, an in-process
 * converge) ask for `underPolicy: true`: their builds read host files only
 * where the server policy's builds.hostCopyPrefixes allow, and no instance is
 * created while CARTE_HOME's filesystem has less free space than its
 * disk.reserve. Other commands do not read the policy.
 */
export async function linuxDriver(ctx: Context, opts: { underPolicy?: boolean | (() => ServerPolicy); insecureRegistries?: readonly string[] } = {}): Promise<LinuxDriver> {
  if (process.getuid?.() !== 0) {
    throw new CarteError('driver', 'running containers needs root (namespaces, mounts, cgroups): run carte as root');
  }
  const settings = driverSettings();
  await checkHostTools(settings);
  // A function: the daemon's live policy, read at each decision (it may be reloaded).
  let current: (() => ServerPolicy) | null = null;
  if (typeof opts.underPolicy === 'function') current = opts.underPolicy;
  else if (opts.underPolicy) {
    const fixed = await ctx.policy();
    current = () => fixed;
  }
  return new LinuxDriver({
    home: ctx.home, log: ctx.log, ...settings,
    hostCopyPrefixes: current?.().builds.hostCopyPrefixes,
    diskReserveBytes: current ? () => current!().rules.disk.reserveBytes : undefined,
    buildLimits: current ? () => current!().builds.limits : undefined,
    registry: registryAccess(ctx, opts.insecureRegistries),
  });
}

/**
 * Images need no root and no runtime: building is file work, under the
 * server policy's build rules. As root, builds also get the build sandbox
 * (RUN steps, COPY --from a stage), made with the driver's own settings.
 */
export async function imageTools(ctx: Context, opts: { builds?: boolean } = {}): Promise<{ images: ImageStore; builder: ImageBuilder }> {
  const images = new ImageStore(ctx.home);
  const policy = opts.builds ? await ctx.policy() : null;
  const hostCopyPrefixes = policy?.builds.hostCopyPrefixes;
  const settings = driverSettings();
  const sandbox = policy && process.getuid?.() === 0 && findExecutable(settings.runtime ?? 'runc')
    ? new LinuxDriver({ home: ctx.home, log: ctx.log, ...settings, buildLimits: () => policy.builds.limits }).buildSandbox : null;
  // FROM a registry image not stored yet: pulled as `carte pull` would (as root: the credentials are root's).
  const pull = process.getuid?.() === 0 ? async (ref: string) => void (await pullImage(images, ref, registryAccess(ctx))) : undefined;
  return { images, builder: new ImageBuilder(images, new Runner(ctx.log), { hostCopyPrefixes, sandbox, pull, diskReserveBytes: policy ? () => policy.rules.disk.reserveBytes : undefined }) };
}

/**
 * How this process reaches registries: logins from the secrets key
 * (`carte login`), plain HTTP on loopback and on `insecure` (the daemon
 * config's registries.insecure), authfiles on the run tmpfs.
 */
export function registryAccess(ctx: Context, insecure: readonly string[] = []): RegistryAccess {
  const credentials = new RegistryCredentials(ctx.home, () => ctx.vault().key());
  return {
    insecure,
    credential: (registry) => credentials.get(registry),
    authRoot: path.join(new HomePaths(ctx.home).runRoot, REGISTRY_RUN_DIR),
  };
}
