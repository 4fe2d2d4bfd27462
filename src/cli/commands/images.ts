import fs from 'node:fs';
import { ConflictError, UsageError } from '../../errors.js';
import { formatSize } from '../../drivers/linux/images/build.js';
import { exportOciArchive, importImageArchive } from '../../drivers/linux/images/oci.js';
import { normalizeRef } from '../../drivers/linux/images/store.js';
import { DEFAULT_POLICY_FILE } from '../../policy/policy.js';
import type { Context } from '../context.js';
import { imageTools } from '../linux.js';
import { age, table, write } from '../output.js';

export interface BuildOptions {
  tag: string;
  file?: string;
  buildArg?: string[];
  quiet?: boolean;
  /** RUN steps get the network (the server policy's builds.network must allow it). */
  network?: boolean;
}

export async function build(ctx: Context, context: string, opts: BuildOptions): Promise<void> {
  const args: Record<string, string> = {};
  for (const a of opts.buildArg ?? []) {
    const i = a.indexOf('=');
    if (i < 1) throw new UsageError(`build: --build-arg takes NAME=VALUE, got "${a}"`);
    args[a.slice(0, i)] = a.slice(i + 1);
  }
  const started = performance.now();
  if (opts.network) {
    const policy = await ctx.policy();
    if (!policy.builds.network) throw new UsageError(`build: --network is not allowed by the server policy: add "builds: { network: true }" to ${policy.file ?? DEFAULT_POLICY_FILE} (docs/policy.md)`);
  }
  const { builder } = await imageTools(ctx, { builds: true });
  // The folder named on the command line is the caller's choice: built by its real path.
  const real = fs.existsSync(context) ? fs.realpathSync(context) : context;
  const r = await builder.build({ context: real, cartefile: opts.file, tag: opts.tag, args, network: opts.network === true, onProgress: opts.quiet ? undefined : (l) => write(l) });
  if (opts.quiet) write(r.image.id);
  else write(`done in ${((performance.now() - started) / 1000).toFixed(2)}s (${r.cachedSteps}/${r.steps} layer steps cached)`);
}

export async function images(ctx: Context): Promise<void> {
  const list = await (await imageTools(ctx)).images.list();
  if (!list.length) {
    process.stderr.write('no images\n');
    return;
  }
  const now = ctx.now();
  write(table(['NAME', 'TAG', 'ID', 'SIZE', 'CREATED'], list.map((i) => [i.name, i.tag, i.image.id.slice(0, 12), formatSize(i.image.size), `${age(i.image.createdAt, now)} ago`])));
}

export async function rmi(ctx: Context, refs: string[]): Promise<void> {
  const { images } = await imageTools(ctx);
  const services = Object.values((await ctx.store().read()).services);
  for (const ref of refs) {
    const normal = normalizeRef(ref);
    const users = services.filter((s) => s.revision.spec.image !== null && normalizeRef(s.revision.spec.image) === normal).map((s) => s.name);
    if (users.length) throw new ConflictError(`image ${normal} is used by ${users.map((u) => `service "${u}"`).join(', ')}; change or delete those first`);
  }
  for (const ref of refs) {
    const id = await images.untag(ref);
    write(`untagged ${normalizeRef(ref)} (${id.slice(0, 12)}); unused layers go with "carte gc"`);
  }
}

export async function imageImport(ctx: Context, file: string, ref: string | undefined): Promise<void> {
  const image = await importImageArchive((await imageTools(ctx)).images, file, ref, {
    onLeftOut: (line) => process.stderr.write(`left out: ${line}\n`),
    onProgress: (line) => process.stderr.write(`${line}\n`),
  });
  write(`imported ${image.ref} from ${FORMAT_NAMES[image.format]} (id ${image.id.slice(0, 12)}, ${formatSize(image.size)}, ${image.layers.length} ${image.layers.length === 1 ? 'layer' : 'layers'})`);
}

const FORMAT_NAMES = { 'oci-archive': 'an OCI archive', 'docker-archive': 'a docker archive', rootfs: 'a rootfs tarball' } as const;

export async function imageExport(ctx: Context, ref: string, file: string): Promise<void> {
  const r = await exportOciArchive((await imageTools(ctx)).images, ref, file);
  write(`exported ${normalizeRef(ref)} to ${file} (OCI archive, ${formatSize(r.size)}, manifest ${r.manifestDigest})`);
}
