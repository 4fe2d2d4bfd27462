// The carte command line: declares every command and flag (so `--help` is
// complete), loads a command's module only when it runs (so `carte get` does
// not pay for compiling the schema), and turns errors into exit codes:
// 0 ok, 1 runtime failure, 2 invalid input.
import { Command, CommanderError, Option } from 'commander';
import { CarteError, ExitCode } from '../errors.js';
import { VERSION } from '../version.js';
import { auditedCommand, cliEntry, type AuditedCommand } from './audited.js';
import { makeContext, type Context, type GlobalOptions } from './context.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

function buildProgram(run: (action: (ctx: Context) => Promise<void | number>) => Promise<void>): Command {
  const program = new Command('carte')
    .description('A declarative container orchestrator for one small Linux server.\nDesired state lives in CARTE_HOME; manifests are apiVersion carte/v1.')
    .addOption(new Option('--home <dir>', 'folder holding carte\'s state (default: $CARTE_HOME or /var/lib/carte)'))
    .addOption(new Option('--policy <file>', 'the server policy manifests are admitted under (default: $CARTE_POLICY or /etc/carte/policy.yaml; a missing default file means the built-in policy)'))
    .addOption(new Option('--secret-key <file>', 'the server\'s secret key, made on first use (default: $CARTE_SECRET_KEY or /etc/carte/secret.key; root-only)'))
    .option('--debug', 'show debug logs and stack traces of internal errors')
    .version(VERSION, '-V, --version', 'print carte\'s version')
    .helpOption('-h, --help', 'show help for carte or for a command')
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true })
    .exitOverride();

  program.command('apply')
    .description('create or update services from manifests (all or nothing)')
    .requiredOption('-f, --filename <path>', 'a manifest file, a folder (every *.yaml/*.yml below it) or - for stdin; repeatable', collect)
    .option('--dry-run', 'validate and show what would change, store nothing')
    .option('--prune', 'also delete services applied from the CLI that are not in these manifests')
    .option('--wait', 'wait until the services are converged (ready), or fail after --timeout')
    .option('--timeout <duration>', 'how long --wait and an in-process converge may take (default 2m)')
    .option('--no-start', 'only change desired state: start and stop nothing (a running daemon still acts)')
    .action((opts) => run(async (ctx) => (await import('./commands/apply.js')).apply(ctx, opts)));

  program.command('diff')
    .description('show, field by field, what apply would change')
    .requiredOption('-f, --filename <path>', 'a manifest file, a folder or - for stdin; repeatable', collect)
    .option('--prune', 'also show the services --prune would delete')
    .action((opts) => run(async (ctx) => (await import('./commands/diff.js')).diff(ctx, opts)));

  program.command('get')
    .description('list services (or one service) from desired state')
    .argument('[type]', 'what to list: services (the default; also service, svc)')
    .argument('[name]', 'one service')
    .option('-o, --output <format>', 'wide (more columns), json or yaml (re-appliable manifests with a status)')
    .action((type, name, opts) => run(async (ctx) => (await import('./commands/get.js')).get(ctx, [type, name].filter((w) => w !== undefined), opts)));

  program.command('describe')
    .description('show a service in full: spec, revisions, recent events')
    .argument('[type]', 'service (optional)')
    .argument('[name]', 'the service')
    .action((type, name) => run(async (ctx) => (await import('./commands/describe.js')).describe(ctx, [type, name].filter((w) => w !== undefined))));

  program.command('delete')
    .description('delete services from desired state (all or nothing)')
    .argument('[names...]', 'services to delete (optionally preceded by "service")')
    .option('-f, --filename <path>', 'delete the services these manifests define; repeatable', collect)
    .option('--dry-run', 'check and show what would be deleted, delete nothing')
    .option('--force', 'also delete services a folder or Git source owns (stop that source first, or it puts them back)')
    .option('--wait', 'wait until the services are converged (ready), or fail after --timeout')
    .option('--timeout <duration>', 'how long --wait and an in-process converge may take (default 2m)')
    .option('--no-start', 'only change desired state: start and stop nothing (a running daemon still acts)')
    .action((names, opts) => run(async (ctx) => (await import('./commands/delete.js')).del(ctx, names, opts)));

  program.command('history')
    .description('list the revisions of a service')
    .argument('<name>', 'the service')
    .action((name) => run(async (ctx) => (await import('./commands/history.js')).history(ctx, name)));

  program.command('rollback')
    .description('make an earlier revision current again (as a new revision)')
    .argument('<name>', 'the service')
    .option('--to <revision>', 'the revision to return to (default: the newest earlier one with a different spec)')
    .option('--wait', 'wait until the services are converged (ready), or fail after --timeout')
    .option('--timeout <duration>', 'how long --wait and an in-process converge may take (default 2m)')
    .option('--no-start', 'only change desired state: start and stop nothing (a running daemon still acts)')
    .action((name, opts) => run(async (ctx) => (await import('./commands/rollback.js')).rollback(ctx, name, opts)));

  program.command('events')
    .description('list recent events, oldest first')
    .option('--for <name>', 'only events of this service')
    .option('--limit <n>', 'at most this many past events (default 50)')
    .option('-f, --follow', 'keep printing new events until interrupted')
    .action((opts) => run(async (ctx) => (await import('./commands/events.js')).events(ctx, opts)));

  const waitOptions = (c: Command) => c
    .option('--wait', 'wait until the service is converged, or fail after --timeout')
    .option('--timeout <duration>', 'how long --wait may take (default 2m)');
  waitOptions(program.command('stop')
    .description('stop a service: remove its instances and keep it at zero until "carte start"')
    .argument('<service>', 'the service'))
    .action((name, opts) => run(async (ctx) => (await import('./commands/services.js')).stop(ctx, name, opts)));
  waitOptions(program.command('start')
    .description('start a stopped service again')
    .argument('<service>', 'the service'))
    .action((name, opts) => run(async (ctx) => (await import('./commands/services.js')).start(ctx, name, opts)));
  waitOptions(program.command('restart')
    .description('replace every instance of a service, one by one, under its update strategy')
    .argument('<service>', 'the service'))
    .action((name, opts) => run(async (ctx) => (await import('./commands/services.js')).restart(ctx, name, opts)));
  waitOptions(program.command('scale')
    .description('set the replica count of a service (refused for autoscaled services)')
    .argument('<service>', 'the service')
    .requiredOption('--replicas <n>', 'the number of instances'))
    .action((name, opts) => run(async (ctx) => (await import('./commands/services.js')).scale(ctx, name, opts)));

  program.command('status')
    .description('the daemon, each source (last sync, commit, error), whether each service is converged, and the alerts firing')
    .action(() => run(async (ctx) => (await import('./commands/services.js')).status(ctx)));

  program.command('alerts')
    .description('list alerts firing and resolved in the last 24h, newest first (kept by the daemon in the state file)')
    .option('--all', 'every kept alert (the last 100 resolved ones)')
    .option('-o, --output <format>', 'json')
    .action((opts) => run(async (ctx) => (await import('./commands/alerts.js')).alerts(ctx, opts)));

  program.command('top')
    .description('CPU, memory, network and disk of every instance, traffic of every service, and the host, from the daemon\'s collector; live (keys: c m n r i to sort, q to quit) on a terminal')
    .option('--once', 'print the table once and exit (what a pipe or script gets anyway)')
    .option('--sort <key>', 'cpu, memory, name, restarts or net', 'cpu')
    .action((opts) => run(async (ctx) => (await import('./commands/top.js')).top(ctx, opts)));

  program.command('stats <name>')
    .description('an instance\'s or service\'s metrics over time: now, min, mean, max and a sparkline each')
    .option('--metric <name>', 'a metric to show (repeatable, or comma-separated; default: CPU, memory, network for an instance; requests, errors, p95, connections for a service)', collect)
    .option('--since <duration>', 'how far back', '1h')
    .action((name, opts) => run(async (ctx) => (await import('./commands/top.js')).stats(ctx, name, opts)));

  program.command('sync')
    .description('make the daemon fetch and apply its sources now')
    .action(() => run(async (ctx) => (await import('./commands/services.js')).sync(ctx)));

  const state = program.command('state')
    .description('check state.json and the generations kept of it, or put one back');
  state.command('verify')
    .description('check state.json and each kept generation (exit 1 if state.json is damaged)')
    .action(() => run(async (ctx) => (await import('./commands/state.js')).verify(ctx)));
  state.command('restore')
    .description('make a kept generation (default: the newest good one) or a state file the current state')
    .argument('[generation]', 'a generation number from "carte state verify", or the path of a state file')
    .action((target) => run(async (ctx) => (await import('./commands/state.js')).restore(ctx, target)));

  const secret = program.command('secret')
    .description('secrets: values kept encrypted on the server, used by services by name (never written in manifests)');
  secret.command('set')
    .description('store a secret (every key; replaces the whole secret), rolling the services that use it if a value changed')
    .argument('<name>', 'the secret')
    .option('--from-literal <key=value>', 'a key and its value; repeatable', collect)
    .option('--from-file <[key=]file>', 'a key and a file holding its value (key: the file\'s name); repeatable', collect)
    .option('--force', 'store it even if it drops a key a service uses')
    .option('--usable-by <source>', 'a source (or pattern: cli, folder:/srv/carte/*, git:*) whose manifests may use it; repeatable (default: cli only, or what was set before)', collect)
    .option('--wait', 'wait until the rolled services are converged, or fail after --timeout')
    .option('--timeout <duration>', 'how long --wait and an in-process converge may take (default 2m)')
    .option('--no-start', 'only change desired state: start and stop nothing (a running daemon still acts)')
    .addHelpText('after', '\nWith neither --from-literal nor --from-file, standard input is the value of key "value" (exactly its bytes).')
    .action((name, opts) => run(async (ctx) => (await import('./commands/secrets.js')).set(ctx, name, opts)));
  secret.command('grant')
    .description('say which sources\' manifests may use a secret (replaces the grant; values unchanged, nothing rolls)')
    .argument('<name>', 'the secret')
    .option('--usable-by <source>', 'a source (or pattern: cli, folder:/srv/carte/*, git:*); repeatable', collect)
    .action((name, opts) => run(async (ctx) => (await import('./commands/secrets.js')).grant(ctx, name, opts)));
  secret.command('list')
    .description('list secrets: keys, source, last update, the services that use each (never values)')
    .action(() => run(async (ctx) => (await import('./commands/secrets.js')).list(ctx)));
  secret.command('get')
    .description('print a secret\'s keys, one a line (never values)')
    .argument('<name>', 'the secret')
    .option('--keys', 'print the keys (the default, and the only thing get prints)')
    .action((name) => run(async (ctx) => (await import('./commands/secrets.js')).get(ctx, name)));
  secret.command('rm')
    .description('remove a secret (refused while a stored service uses it)')
    .argument('<name>', 'the secret')
    .option('--force', 'remove it even though services use it (their new instances will fail to start)')
    .action((name, opts) => run(async (ctx) => (await import('./commands/secrets.js')).rm(ctx, name, opts)));
  secret.command('seal')
    .description('print a SealedSecret manifest, safe to commit: its values encrypted to the server\'s public key')
    .argument('<name>', 'the secret')
    .option('--from-literal <key=value>', 'a key and its value; repeatable', collect)
    .option('--from-file <[key=]file>', 'a key and a file holding its value; repeatable', collect)
    .option('--public-key <key>', 'seal to this public key (age1… , which "carte secret public-key" prints on the server; no root needed)')
    .option('--source <id>', 'only this source may open it (its id as carte get shows it: git:URL#BRANCH:PATH, folder:/PATH or cli); without it, any source may')
    .addHelpText('after', '\nWith neither --from-literal nor --from-file, standard input is the value of key "value" (exactly its bytes).')
    .action((name, opts) => run(async (ctx) => (await import('./commands/secrets.js')).seal(ctx, name, opts)));
  secret.command('public-key')
    .description('print the server\'s public key, which "carte secret seal --public-key" seals to')
    .action(() => run(async (ctx) => (await import('./commands/secrets.js')).publicKey(ctx)));
  secret.command('rotate-key')
    .description('make a new server key and encrypt every secret again with it (values and services unchanged)')
    .option('--keep-old', 'keep the old keys for opening (SealedSecrets sealed to them), until they are sealed again')
    .action((opts) => run(async (ctx) => (await import('./commands/secrets.js')).rotate(ctx, opts)));

  const user = program.command('user')
    .description('users of the dashboard and the API, with their roles (viewer sees, operator also acts, admin also manages users)');
  const passwordHelp = '\nThe password is read from standard input when one is piped in (one line); with none, one is generated and printed once.';
  user.command('add')
    .description('add a user')
    .argument('<name>', 'the user')
    .option('--role <role>', 'viewer, operator or admin')
    .addHelpText('after', passwordHelp)
    .action((name, opts) => run(async (ctx) => (await import('./commands/users.js')).userAdd(ctx, name, opts)));
  user.command('list')
    .description('list users and their roles (never passwords)')
    .option('-o, --output <format>', 'json')
    .action((opts) => run(async (ctx) => (await import('./commands/users.js')).userList(ctx, opts)));
  user.command('rm')
    .description('remove a user (their dashboard sessions end)')
    .argument('<name>', 'the user')
    .action((name) => run(async (ctx) => (await import('./commands/users.js')).userRm(ctx, name)));
  user.command('passwd')
    .description('set a user\'s password (their dashboard sessions end)')
    .argument('<name>', 'the user')
    .addHelpText('after', passwordHelp)
    .action((name) => run(async (ctx) => (await import('./commands/users.js')).userPasswd(ctx, name)));

  const token = program.command('token')
    .description('API tokens for scripts and CI (sent as "Authorization: Bearer <token>")');
  token.command('create')
    .description('make a token and print it (only now: carte keeps only its SHA-256)')
    .option('--name <name>', 'what the token is for, e.g. ci')
    .option('--role <role>', 'viewer, operator or admin')
    .option('--expires <duration>', 'valid for this long, e.g. 30d (default: until removed)')
    .action((opts) => run(async (ctx) => (await import('./commands/users.js')).tokenCreate(ctx, opts)));
  token.command('list')
    .description('list tokens: id, name, role, expiry (never the tokens)')
    .option('-o, --output <format>', 'json')
    .action((opts) => run(async (ctx) => (await import('./commands/users.js')).tokenList(ctx, opts)));
  token.command('rm')
    .description('remove a token: it stops working at once')
    .argument('<token>', 'its id or name')
    .action((idOrName) => run(async (ctx) => (await import('./commands/users.js')).tokenRm(ctx, idOrName)));

  program.command('audit')
    .description('list what was done through the CLI, the dashboard and the API: who, how, what, result (oldest of those shown first)')
    .option('--limit <n>', 'the newest N entries (default 50)')
    .option('-o, --output <format>', 'json')
    .action((opts) => run(async (ctx) => (await import('./commands/audit.js')).audit(ctx, opts)));

  program.command('daemon')
    .description('run the reconciler in the foreground: converge desired state for ever (needs root)')
    .option('--watch <dir>', 'a folder of manifests to apply on every change; repeatable', collect)
    .option('--git <url>', 'a Git repository of manifests to follow')
    .option('--branch <name>', 'the branch to follow', 'main')
    .option('--path <dir>', 'the folder of manifests inside the repository', '.')
    .option('--interval <duration>', 'how often to fetch the repository', '30s')
    .option('--config <file>', 'YAML with watch: [dirs], git: [{url, branch, path, interval}], alerts: {webhooks, rules} (docs/observability.md) and registries: {insecure} (docs/images.md)')
    .option('--resync <duration>', 'periodic full resync (catches changes nobody reported)', '3s')
    .option('--publish-address <ip>', 'bind address of published ports that name none', '0.0.0.0')
    .option('--metrics-interval <duration>', 'how often the autoscaler samples each instance\'s cgroup', '2s')
    .option('--memory-reserve <size>', 'memory autoscaling leaves to the host and carte (scale-ups are capped)', '512Mi')
    .option('--collect-interval <duration>', 'how often the metrics collector samples instances, services and the host (top, stats, alerts, /v1/metrics)', '10s')
    .option('--disk-interval <duration>', 'how often each service\'s disk use is measured against the policy\'s disk.perService', '30s')
    .option('--http <addr:port>', 'where the dashboard listens, or off (default: $CARTE_HTTP, else 127.0.0.1:7070; docs/dashboard.md)')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .action((opts) => run(async (ctx) => (await import('./commands/daemon.js')).daemon(ctx, opts)));

  const policy = program.command('policy')
    .description('the server policy: what manifests may ask of this machine (docs/policy.md)');
  policy.command('show')
    .description('print the policy in effect as YAML, every default written out')
    .option('--source <id>', 'only the rules that apply to this source (cli, folder:/abs/path, git:URL#branch:path)')
    .action((opts) => run(async (ctx) => (await import('./commands/policy.js')).show(ctx, opts)));

  program.command('build')
    .description('build an image from a Cartefile (each COPY/ADD is a cached layer)')
    .argument('<context>', 'the build context folder')
    .requiredOption('-t, --tag <name:tag>', 'name of the image to build')
    .option('-f, --file <path>', 'the Cartefile, relative to the context (default: Cartefile)')
    .option('--build-arg <name=value>', 'set an ARG; repeatable', collect)
    .option('-q, --quiet', 'print only the image id')
    .option('--network', 'RUN steps reach the network through carte\'s bridge (the server policy must allow builds.network)')
    .action((context, opts) => run(async (ctx) => (await import('./commands/images.js')).build(ctx, context, opts)));

  program.command('images')
    .description('list images: name, tag, id, size, created')
    .action(() => run(async (ctx) => (await import('./commands/images.js')).images(ctx)));

  program.command('rmi')
    .description('remove image tags (refused while a service uses the image); carte gc frees the layers')
    .argument('<images...>', 'name:tag of each image')
    .action((refs) => run(async (ctx) => (await import('./commands/images.js')).rmi(ctx, refs)));

  const image = program.command('image').description('image commands');
  image.command('import')
    .description('import an OCI archive, a docker save archive or a plain rootfs tarball (detected from its contents)')
    .argument('<file>', 'the .tar file')
    .argument('[name:tag]', 'name of the new image (or -t)')
    .option('-t, --tag <name:tag>', 'name of the new image (default: the name the archive gives)')
    .action((file, ref, opts) => run(async (ctx) => (await import('./commands/images.js')).imageImport(ctx, file, ref ?? opts.tag)));
  image.command('export')
    .description('write an image as an OCI archive (a tar of an OCI image layout) that skopeo, podman and docker load')
    .argument('<name:tag>', 'the image')
    .argument('<file>', 'the archive to write')
    .action((ref, file) => run(async (ctx) => (await import('./commands/images.js')).imageExport(ctx, ref, file)));

  program.command('pull')
    .description('pull an image from a registry into the local store (linux/amd64 of a multi-arch index)')
    .argument('<ref>', 'e.g. 127.0.0.1:5000/team/app:1.2 or registry.example/team/app@sha256:…')
    .option('--config <file>', 'the daemon config, for its registries.insecure (plain-HTTP registries beyond loopback)')
    .option('-q, --quiet', 'no progress, only the result line')
    .action((ref, opts) => run(async (ctx) => (await import('./commands/registry.js')).pull(ctx, ref, opts)));

  program.command('push')
    .description('push a local image to a registry')
    .argument('<image>', 'the local name:tag')
    .argument('<ref>', 'where to, e.g. 127.0.0.1:5000/team/app:1.2')
    .option('--config <file>', 'the daemon config, for its registries.insecure')
    .option('-q, --quiet', 'no progress, only the result line')
    .action((image, ref, opts) => run(async (ctx) => (await import('./commands/registry.js')).push(ctx, image, ref, opts)));

  program.command('login')
    .description('check a registry login and keep it, encrypted with the secrets key, for pull, push and the daemon')
    .argument('<registry>', 'host or host:port')
    .option('-u, --username <user>', 'the registry user')
    .option('--password-stdin', 'read the password from standard input (else it is asked on the terminal)')
    .option('--config <file>', 'the daemon config, for its registries.insecure')
    .action((registry, opts) => run(async (ctx) => (await import('./commands/registry.js')).login(ctx, registry, opts)));

  program.command('logout')
    .description('forget the login for a registry')
    .argument('<registry>', 'host or host:port')
    .action((registry) => run(async (ctx) => (await import('./commands/registry.js')).logout(ctx, registry)));

  program.command('run')
    .description('start one instance of an image by hand (needs root); services get theirs from the reconciler')
    .argument('<image>', 'name:tag of a local image')
    .argument('[command...]', 'command and arguments, after --, replacing the image\'s')
    .option('--name <name>', 'instance name (default: image name plus a random suffix)')
    .option('--cpu <amount>', 'CPU limit, e.g. 500m')
    .option('--memory <size>', 'memory limit, swap off, e.g. 128Mi')
    .option('--pids <n>', 'process limit')
    .option('-e, --env <name=value>', 'environment variable; repeatable', collect)
    .option('-v, --volume <source:/path[:ro]>', 'named volume (NAME:/path) or host folder (/host:/path); repeatable', collect)
    .option('-u, --user <user>', 'user (uid[:gid] or a name from the image)')
    .option('-w, --workdir <path>', 'working directory')
    .action((image, command, opts) => run(async (ctx) => (await import('./commands/instances.js')).run(ctx, image, command, opts)));

  program.command('logs')
    .description('print an instance\'s output (stdout to stdout, stderr to stderr)')
    .argument('<instance>', 'the instance')
    .option('-f, --follow', 'keep printing new output until interrupted')
    .option('--tail <n>', 'only the last N lines')
    .option('-t, --timestamps', 'prefix each line with its time')
    .option('-p, --previous', 'the output of the instance\'s previous life (before its last restart or removal)')
    .action((name, opts) => run(async (ctx) => (await import('./commands/instances.js')).logs(ctx, name, opts)));

  program.command('exec')
    .description('run a command inside a running instance; exits with its exit code')
    .argument('<instance>', 'the instance')
    .argument('<command...>', 'the command, after --')
    .option('-i, --interactive', 'connect standard input')
    .option('-t, --tty', 'allocate a terminal')
    .action((name, command, opts) => run(async (ctx) => (await import('./commands/instances.js')).exec(ctx, name, command, opts)));

  program.command('rm')
    .description('stop (SIGTERM, grace, SIGKILL) and remove instances, all they had included')
    .argument('<instances...>', 'the instances')
    .option('--grace <duration>', 'time between SIGTERM and SIGKILL (default 10s)')
    .action((names, opts) => run(async (ctx) => (await import('./commands/instances.js')).rm(ctx, names, opts)));

  program.command('gc')
    .description('remove what carte made that nothing owns: runtime states, mounts, netns, leases, cgroups, unused images')
    .action(() => run(async (ctx) => (await import('./commands/instances.js')).gc(ctx)));

  program.command('version')
    .description('print carte\'s version and the Node.js it runs on')
    .action(() => run(async () => {
      process.stdout.write(`carte ${VERSION} (node ${process.version})\n`);
    }));

  return program;
}

/** Records a command's outcome; a log that cannot be written warns and never fails the command. */
async function recordCli(home: string, cmd: AuditedCommand, outcome: { error?: unknown; exitCode: number }): Promise<void> {
  try {
    const { FileAuditLog } = await import('../audit/log.js');
    await new FileAuditLog(home).record(cliEntry(cmd, outcome, new Date()));
  } catch (e) {
    process.stderr.write(`warning: the audit log did not record this command: ${(e as Error).message}\n`);
  }
}

function printError(err: unknown, debug: boolean): number {
  if (err instanceof CarteError) {
    // Located problems are self-explanatory lines; the summary says what happened as a whole.
    for (const line of err.details) process.stderr.write(`${line}\n`);
    process.stderr.write(`error: ${err.message}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  process.stderr.write(`internal error: ${e?.message ?? String(err)}\n`);
  process.stderr.write(debug && e?.stack ? `${e.stack}\n` : 'this is a bug in carte; run again with --debug for the stack trace\n');
  return ExitCode.failure;
}

/** Every command's path below `carte` that runs an action (e.g. "secret set"), for tests. */
export function commandPaths(): string[] {
  const out: string[] = [];
  const walk = (c: Command, prefix: string[]) => {
    for (const sub of c.commands) {
      const p = [...prefix, sub.name()];
      if (sub.commands.length) walk(sub, p);
      else out.push(p.join(' '));
    }
  };
  walk(buildProgram(async () => undefined), []);
  return out;
}

export async function main(argv: string[]): Promise<number> {
  let globals: GlobalOptions = {};
  let exitCode: number = ExitCode.ok;
  let audited: AuditedCommand | null = null;
  const program = buildProgram(async (action) => {
    globals = program.opts<GlobalOptions>();
    const ctx = makeContext(globals);
    let error: unknown;
    try {
      // A command may return its own exit code (exec passes on the command's).
      const code = await action(ctx);
      if (typeof code === 'number') exitCode = code;
    } catch (err) {
      error = err;
      exitCode = printError(err, globals.debug === true);
    }
    if (audited) await recordCli(ctx.home, audited, { error, exitCode });
  });
  // Every command that changes something is audited here, from its command line (audited.ts).
  program.hook('preAction', (_program, command) => {
    const names: string[] = [];
    for (let c: Command | null = command; c && c !== program; c = c.parent) names.unshift(c.name());
    audited = auditedCommand(names, command.processedArgs, command.opts());
  });
  try {
    await program.parseAsync(argv, { from: 'node' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its message (or the help / version text).
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.invalidInput;
    }
    return printError(err, argv.includes('--debug'));
  }
  return exitCode;
}
