// The instance's root filesystem: overlayfs with the image layers as
// read-only lowerdirs and a per-instance upperdir/workdir, so layers are
// unpacked once and shared by every instance that uses them.
import fs from 'node:fs/promises';
import type { Runner } from './exec.js';

/** Mount points below `prefix` (from /proc/self/mountinfo), deepest first, for unmounting. */
export async function mountsUnder(prefix: string): Promise<string[]> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const points = text.split('\n').map((l) => l.split(' ')[4]).filter((p): p is string => !!p)
    // mountinfo escapes spaces and such as octal (\040).
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === prefix || p.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

export async function mountOverlay(runner: Runner, opts: { layers: string[]; upper: string; work: string; target: string; empty: string; resource: string; extraOptions?: string[] }): Promise<void> {
  await Promise.all([opts.upper, opts.work, opts.target, opts.empty].map((d) => fs.mkdir(d, { recursive: true, mode: 0o755 })));
  // overlayfs lists the uppermost lower layer first; an image without layers gets one empty lowerdir.
  const lower = opts.layers.length ? [...opts.layers].reverse().join(':') : opts.empty;
  const options = [`lowerdir=${lower},upperdir=${opts.upper},workdir=${opts.work}`, ...(opts.extraOptions ?? [])].join(',');
  // The whole option string must fit in one page (4096 bytes): about 40 layers at these path lengths.
  await runner.run('mount', ['-t', 'overlay', 'overlay', '-o', options, opts.target], { step: 'mount the root filesystem of', resource: opts.resource });
}

/** Unmounts everything at or below `target`; not mounted is fine. Returns what stayed mounted. */
export async function unmountAll(runner: Runner, target: string, resource: string): Promise<string[]> {
  for (const point of await mountsUnder(target)) {
    await runner.run('umount', [point], { step: 'unmount', resource, okCodes: [32] }).catch(async () => {
      // Busy (a process still inside): detach now, the kernel frees it when the last user leaves.
      await runner.run('umount', ['-l', point], { step: 'unmount (lazily)', resource, okCodes: [32] });
    });
  }
  return mountsUnder(target);
}
