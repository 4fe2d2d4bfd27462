// What every command gets: where state lives, the store, a logger, a clock.
import path from 'node:path';
import { cliLogger, type Logger } from '../log.js';
import { DEFAULT_HOME, Store } from '../store/store.js';

export interface GlobalOptions {
  home?: string;
  debug?: boolean;
}

export interface Context {
  home: string;
  debug: boolean;
  log: Logger;
  now: () => Date;
  store: () => Store;
}

export function makeContext(opts: GlobalOptions): Context {
  const home = path.resolve(opts.home ?? process.env.CARTE_HOME ?? DEFAULT_HOME);
  let store: Store | undefined;
  let log: Logger | undefined;
  return {
    home,
    debug: opts.debug === true,
    // Made on first use: most commands never log, and the pretty printer costs startup time.
    get log() {
      return (log ??= cliLogger(opts.debug ? 'debug' : 'warn'));
    },
    now: () => new Date(),
    // A recovered state is worth a line on stderr: the user learns why their last change may be gone.
    store: () => (store ??= Store.open(home, { onRecover: (info) => process.stderr.write(`warning: ${info.message}\n`) })),
  };
}
