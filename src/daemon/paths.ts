import path from 'node:path';

/** Files of a running daemon under CARTE_HOME. */
export const daemonPaths = (home: string) => ({
  socket: path.join(home, 'carte.sock'),
  /** Held by whoever converges (the daemon, or `carte apply` without one): never two at once. */
  convergeLock: path.join(home, 'converge.lock'),
  convergePid: path.join(home, 'converge.pid'),
  /** The scaler's scale-down window, saved by a clean stop for the next start. */
  scalerWindow: path.join(home, 'scaler-window.json'),
});
