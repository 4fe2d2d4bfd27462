// End-to-end helpers: the CLI and the daemon run as separate processes, as a
// user runs them, on a CARTE_HOME, bridge, subnet and cgroup parent of their
// own; teardown stops the daemon and removes every container and leftover.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LinuxDriver } from '../../src/drivers/linux/driver.js';
import { cliLogger } from '../../src/log.js';
import { emptyState, type StateData } from '../../src/store/state.js';
import { acquireLock } from '../../src/util/lock.js';
import { removeCgroupParent } from './linux.js';
import { CARTE, tempDir } from './paths.js';
import { kill9, run, type Run } from './process.js';

export interface E2eEnv {
  home: string;
  env: NodeJS.ProcessEnv;
  carte(args: string[], opts?: { cwd?: string; input?: string }): Promise<Run>;
  daemon(args: string[]): ChildProcess;
  state(): StateData;
  teardown(): Promise<void>;
}

export function makeE2eEnv(): E2eEnv {
  const id = randomBytes(2).toString('hex');
  const home = tempDir('carte-e2e-');
  const settings = { bridge: `ce${id}`, subnet: `10.201.${parseInt(id, 16) % 250}.0/24`, cgroupParent: `/carte-e2e-${id}` };
  // The secret key of its own, outside the home (as /etc/carte/secret.key is): tests never write /etc/carte.
  const keyDir = tempDir('carte-key-');
  const env = {
    ...process.env, CARTE_HOME: home, CARTE_BRIDGE: settings.bridge, CARTE_SUBNET: settings.subnet, CARTE_CGROUP_PARENT: settings.cgroupParent,
    CARTE_SECRET_KEY: path.join(keyDir, 'secret.key'), NO_COLOR: '1',
    // No dashboard unless a test asks (--http): parallel daemons would all want 127.0.0.1:7070.
    CARTE_HTTP: 'off',
  };
  const daemons: ChildProcess[] = [];
  return {
    home, env,
    carte: (args, opts = {}) => run(CARTE, args, { env, ...opts }),
    daemon(args) {
      const child = spawn(CARTE, ['daemon', '--log-level', process.env.CARTE_TEST_DEBUG ?? 'warn', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => process.env.CARTE_TEST_DEBUG && process.stderr.write(d));
      daemons.push(child);
      return child;
    },
    state: () => (fs.existsSync(path.join(home, 'state.json')) ? JSON.parse(fs.readFileSync(path.join(home, 'state.json'), 'utf8')) as StateData : emptyState()),
    async teardown() {
      for (const d of daemons) {
        if (d.exitCode === null && d.signalCode === null) {
          d.kill('SIGTERM');
          await new Promise((r) => setTimeout(r, 500));
          await kill9(d);
        }
      }
      const driver = new LinuxDriver({ home, log: cliLogger('silent'), ...settings });
      await driver.gc({ keep: new Set() }).catch(() => {});
      await driver.network.removeBridge().catch(() => {});
      removeCgroupParent(settings.cgroupParent, driver.paths.homeId);
      fs.rmSync(driver.runRoot, { recursive: true, force: true });
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(keyDir, { recursive: true, force: true });
    },
  };
}

/** Instances of a service in the store's readiness records. */
export function readiness(state: StateData, service: string): Array<{ name: string; ready: boolean; restarts: number }> {
  return Object.entries(state.instances as Record<string, { service: string; ready: boolean; restarts: number }>)
    .filter(([, r]) => r.service === service)
    .map(([name, r]) => ({ name, ready: r.ready, restarts: r.restarts }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

export const BUSYBOX_CARTEFILE = 'FROM scratch\nCOPY --from=host /bin/busybox /bin/busybox\nCOPY --from=host /bin/busybox /bin/sh\nCMD ["/bin/sh"]\n';

/** A web service on busybox httpd, with a TCP health check, as manifest text. */
export function webManifest(opts: { name?: string; replicas: number; body?: string; extra?: string; healthInterval?: string }): string {
  return `apiVersion: carte/v1
kind: Service
metadata: { name: ${opts.name ?? 'web'} }
spec:
  image: e2e/busybox:1
  command: [sh, -c, "busybox mkdir -p /www && echo ${opts.body ?? 'v1'} > /www/index.html && exec busybox httpd -f -p 8080 -h /www"]
  replicas: ${opts.replicas}
  ports: [{ name: http, port: 8080 }]
  health: { tcp: { port: http }, interval: ${opts.healthInterval ?? '500ms'}, timeout: 500ms }
  stopGracePeriod: 1s
${opts.extra ?? ''}`;
}

/** Builds e2e/busybox:1 (BUSYBOX_CARTEFILE) in `e`'s home, failing the test on error. */
export async function buildBusybox(e: E2eEnv): Promise<void> {
  const ctx = tempDir('carte-ctx-');
  try {
    fs.writeFileSync(path.join(ctx, 'Cartefile'), BUSYBOX_CARTEFILE);
    const built = await e.carte(['build', '-q', '-t', 'e2e/busybox:1', ctx]);
    if (built.code !== 0) throw new Error(`building e2e/busybox:1 failed: ${built.stderr}`);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

/** A service whose HTTP health endpoint accepts and never answers (a CGI that sleeps): a probe that hangs for its whole timeout. */
export const hangingManifest = (name: string) => `apiVersion: carte/v1
kind: Service
metadata: { name: ${name} }
spec:
  image: e2e/busybox:1
  command: [sh, -c, "busybox mkdir -p /www/cgi-bin && printf '#!/bin/sh\\\\nexec sleep 100000\\\\n' > /www/cgi-bin/hang && busybox chmod +x /www/cgi-bin/hang && exec busybox httpd -f -p 8080 -h /www"]
  ports: [{ port: 8080 }]
  health: { http: { path: /cgi-bin/hang, port: 8080 }, interval: 10m, timeout: 10m }
  stopGracePeriod: 0s
`;

/**
 * Damages a home's state.json as a crash or a bad disk would, under the
 * store's writer lock: a writer that read the good file just before cannot
 * then write it back over the damage (which would hide it from the test).
 */
export async function damageState(home: string, text: string): Promise<void> {
  const lock = await acquireLock(path.join(home, 'state.lock'));
  try {
    fs.writeFileSync(path.join(home, 'state.json'), text);
  } finally {
    await lock.release();
  }
}
