import { CARTE } from './paths.js';
import { run, type Run } from './process.js';

/** Runs ./bin/carte with CARTE_HOME set to `home`. */
export function carte(home: string, args: string[], opts: { input?: string; cwd?: string } = {}): Promise<Run> {
  return run(CARTE, args, { env: { ...process.env, CARTE_HOME: home, NO_COLOR: '1' }, ...opts });
}
