// overlayfs's own marks in a layer tree: a whiteout (a character device
// 0/0) hides the same name in the layers below, and a folder with the xattr
// trusted.overlay.opaque=y hides everything below it in lower layers. OCI
// layers say the same with `.wh.NAME` and `.wh..wh..opq` entries; carte
// stores the overlayfs form, so stacking layers as lowerdirs gives the
// image's view (and a RUN step's upperdir is already in this form).
// Node has no mknod or xattr calls: mknod(1) and the attr tools do it, with
// argument arrays, never a shell.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CarteError } from '../../../errors.js';

const run = promisify(execFile);

export const OPAQUE_XATTR = 'trusted.overlay.opaque';

async function tool(file: string, args: string[], what: string): Promise<string> {
  try {
    return (await run(file, args, { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' })).stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new CarteError('image', `failed to ${what}: ${file} is not installed (Debian package ${file === 'mknod' ? 'coreutils' : 'attr'}; scripts/setup.sh installs it)`);
    throw new CarteError('image', `failed to ${what}: ${(err.stderr ?? err.message).trim()}`, { cause: e });
  }
}

/** Makes `file` an overlayfs whiteout (mode 0, as the kernel makes them). */
export async function makeWhiteout(file: string): Promise<void> {
  await tool('mknod', ['-m', '0', file, 'c', '0', '0'], `make the whiteout ${file}`);
}

/** Marks a folder opaque (not following a link). */
export async function markOpaque(dir: string): Promise<void> {
  await tool('setfattr', ['-h', '-n', OPAQUE_XATTR, '-v', 'y', dir], `mark ${dir} opaque`);
}

/** getfattr escapes odd bytes in names as \ooo; this undoes it. */
function unescapeName(s: string): string {
  return Buffer.from(s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), 'latin1').toString('utf8');
}

/** Parses `getfattr -d --absolute-names` output: the paths (relative to root) whose opaque xattr is "y". */
export function parseOpaqueDump(output: string, root: string): Set<string> {
  const out = new Set<string>();
  let file: string | null = null;
  for (const line of output.split('\n')) {
    if (line.startsWith('# file: ')) file = unescapeName(line.slice('# file: '.length));
    else if (file !== null && line === `${OPAQUE_XATTR}="y"`) {
      const rel = file === root ? '' : file.startsWith(`${root}/`) ? file.slice(root.length + 1) : null;
      if (rel !== null) out.add(rel);
    }
  }
  return out;
}

/** The folders of a tree marked opaque, as paths relative to `root` (one walk by getfattr, links not followed). */
export async function opaqueDirs(root: string): Promise<Set<string>> {
  const output = await tool('getfattr', ['-R', '-P', '-h', '--absolute-names', '-d', '-m', `^${OPAQUE_XATTR.replaceAll('.', '\\.')}$`, '-e', 'text', root], `read the opaque marks of ${root}`);
  return parseOpaqueDump(output, root.replace(/\/+$/, ''));
}
