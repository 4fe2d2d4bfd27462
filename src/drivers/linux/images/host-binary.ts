// `COPY --from=host /usr/bin/node /usr/bin/node`: a program from this
// machine, with the shared libraries it needs, so `FROM scratch` can make a
// working node, redis-server or busybox image without a registry.
// Libraries come from `ldd` (the dynamic loader's own resolution), and each
// is copied to the same absolute path in the image, dereferenced.
import type { Runner } from '../exec.js';

/** Parses `ldd` output into the absolute paths of the libraries and the loader. */
export function parseLdd(output: string): string[] {
  const paths: string[] = [];
  for (const line of output.split('\n')) {
    const arrow = /=>\s+(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    const direct = /^\s*(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    const p = arrow?.[1] ?? direct?.[1];
    if (p && !paths.includes(p)) paths.push(p);
  }
  return paths;
}

/** The shared libraries a host program needs (empty for a static one). */
export async function sharedLibraries(runner: Runner, program: string): Promise<string[]> {
  const r = await runner.run('ldd', [program], { step: 'resolve shared libraries of', resource: program, okCodes: [1] });
  // ldd exits 1 with "not a dynamic executable" for static programs and for non-ELF files.
  if (r.code !== 0) return [];
  return parseLdd(r.stdout);
}
