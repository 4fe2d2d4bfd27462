// The machine facts admission reads, kept apart so admit() stays pure.
import fs from 'node:fs';
import type { RealPath } from './host-paths.js';

/** The real path of an existing path through every symlink; null when it does not exist (or cannot be read). */
export const hostRealPath: RealPath = (p) => {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return null;
  }
};
