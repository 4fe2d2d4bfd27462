// The JSON Schema of a `carte/v1` Service manifest, built with TypeBox so the
// TypeScript type of a raw manifest is derived from the schema and the two
// cannot drift. Every object refuses unknown fields: a typo must never be
// silently ignored.
//
// Two carte keywords extend the schema (registered in validate.ts):
//   x-unit  the value is parsed by a unit parser (units.ts) and its sentence is the error;
//   x-hint  what a valid value looks like, used when a `pattern` fails.
// Rules that span fields (image xor build, min <= max, ...) live in checks.ts.
import { IMAGE_REFERENCE_PATTERN, PULL_POLICIES } from './image-reference.js';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { LIMITS } from './types.js';

export const API_VERSION = 'carte/v1';
export const KINDS = ['Service', 'SealedSecret'] as const;

type Unit = 'cpu' | 'memory' | 'duration' | 'percent' | 'int-or-percent' | 'cron' | 'ip';

const Obj = <T extends Parameters<typeof Type.Object>[0]>(props: T, description?: string) =>
  Type.Object(props, { additionalProperties: false, ...(description ? { description } : {}) });
const Opt = Type.Optional;
const Unit = <T>(unit: Unit, type: string | string[]) => Type.Unsafe<T>({ type, 'x-unit': unit });
const StringEnum = <T extends string>(values: readonly T[]) => Type.Unsafe<T>({ type: 'string', enum: [...values] });
const Path = (what: string) => Type.String({ pattern: '^/', 'x-hint': `an absolute path (${what}, starting with /)` });

export const NAME_PATTERN = '^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$';
const Name = Type.String({
  pattern: NAME_PATTERN,
  'x-hint': 'a valid name (lowercase letters, digits and "-", starting with a letter, at most 40 characters)',
});

/** A container port referred to by number or by the name given in `ports`. */
const PortRef = Type.Unsafe<number | string>({ type: ['integer', 'string'], minimum: 1, maximum: 65535, minLength: 1 });
const PortNumber = Type.Integer({ minimum: 1, maximum: 65535 });

export const PROTOCOLS = ['tcp', 'udp'] as const;
export const BALANCE = ['round-robin', 'least-connections'] as const;
export const RESTART_POLICIES = ['always', 'on-failure', 'never'] as const;

const PublishObject = Obj({
  port: PortNumber,
  address: Opt(Unit<string>('ip', 'string')),
  host: Opt(Type.String({ format: 'hostname', minLength: 1 })),
});
/** `publish: 8080` or `publish: { port: 80, host: login.local, address: 127.0.0.1 }`. */
const Publish = Type.Unsafe<number | Static<typeof PublishObject>>({
  ...PublishObject,
  type: ['integer', 'object'],
  minimum: 1,
  maximum: 65535,
});

const Port = Obj({
  name: Opt(Type.String({ pattern: '^[a-z]([-a-z0-9]{0,13}[a-z0-9])?$', 'x-hint': 'a port name (lowercase letters, digits and "-", at most 15 characters)' })),
  port: PortNumber,
  protocol: Opt(StringEnum(PROTOCOLS)),
  publish: Opt(Publish),
  balance: Opt(StringEnum(BALANCE)),
});

const Volume = Obj({
  name: Opt(Name),
  hostPath: Opt(Path('a folder on the host')),
  mountPath: Path('inside the container'),
  readOnly: Opt(Type.Boolean()),
});

const Health = Obj({
  http: Opt(Obj({ path: Path('the URL path'), port: PortRef })),
  tcp: Opt(Obj({ port: PortRef })),
  exec: Opt(Obj({ command: Type.Array(Type.String(), { minItems: 1 }) })),
  interval: Opt(Unit<string>('duration', 'string')),
  timeout: Opt(Unit<string>('duration', 'string')),
  failureThreshold: Opt(Type.Integer({ minimum: 1, maximum: 100 })),
  startPeriod: Opt(Unit<string>('duration', 'string')),
});

const Schedule = Obj({
  cron: Unit<string>('cron', 'string'),
  duration: Opt(Unit<string>('duration', 'string')),
  min: Opt(Type.Integer({ minimum: 0, maximum: LIMITS.replicasMax })),
  max: Opt(Type.Integer({ minimum: 1, maximum: LIMITS.replicasMax })),
});

const Autoscale = Obj({
  min: Opt(Type.Integer({ minimum: 0, maximum: LIMITS.replicasMax })),
  max: Type.Integer({ minimum: 1, maximum: LIMITS.replicasMax }),
  cpu: Opt(Unit<string | number>('percent', ['string', 'number'])),
  memory: Opt(Unit<string | number>('percent', ['string', 'number'])),
  scaleDownDelay: Opt(Unit<string>('duration', 'string')),
  idleToZero: Opt(Unit<string>('duration', 'string')),
  schedule: Opt(Type.Array(Schedule)),
});

const IntOrPercent = Unit<number | string>('int-or-percent', ['integer', 'string']);

/** A key inside a secret: what Kubernetes allows in a Secret's data (also a file name in a secret volume). */
// Also a file name in a secret volume: never `.` or `..`.
export const SECRET_KEY_PATTERN = '^(?!\\.{1,2}$)[-._a-zA-Z0-9]{1,253}$';
const SecretKey = Type.String({ pattern: SECRET_KEY_PATTERN, 'x-hint': 'a secret key (letters, digits, "-", "_" and ".")' });

const SecretRefObject = Obj({ secret: Name, key: SecretKey });
export type SecretRefInput = Static<typeof SecretRefObject>;
/**
 * An environment value: a string (numbers and booleans become strings), or
 * `{ secret, key }`, the value of one key of a stored secret, resolved when
 * an instance is created and never written into desired state.
 */
const EnvValue = Type.Unsafe<string | number | boolean | SecretRefInput>({
  ...SecretRefObject,
  type: ['string', 'number', 'boolean', 'object'],
  'x-hint': 'a string, a number, true or false, or a secret reference { secret: NAME, key: KEY }',
});

/** A secret mounted as files: one file per key (or per item), on a tmpfs, read-only. */
const SecretVolume = Obj({
  name: Name,
  mountPath: Path('inside the container'),
  items: Opt(Type.Array(Obj({
    key: SecretKey,
    path: Type.String({ pattern: '^[^/]', minLength: 1, 'x-hint': 'a relative file path (inside mountPath, not starting with /)' }),
  }), { minItems: 1 })),
  // A string: YAML 1.2 reads an unquoted 0400 as the decimal number 400.
  mode: Opt(Type.String({ pattern: '^0?[0-7]{3}$', 'x-hint': 'an octal file mode in quotes, e.g. "0440"' })),
});

export const ServiceSpecSchema = Obj({
  image: Opt(Type.String({ pattern: IMAGE_REFERENCE_PATTERN, 'x-hint': 'an image reference: name:tag, or from a registry, e.g. 127.0.0.1:5000/team/app:1.2 or registry.example/team/app@sha256:<64 hex>' })),
  pullPolicy: Opt(StringEnum(PULL_POLICIES)),
  build: Opt(Obj({
    context: Type.String({ minLength: 1 }),
    cartefile: Opt(Type.String({ minLength: 1 })),
    args: Opt(Type.Record(Type.String(), Type.String())),
    /** RUN steps reach the network (the server policy's builds.network must allow it). */
    network: Opt(Type.Boolean()),
  })),
  command: Opt(Type.Array(Type.String(), { minItems: 1 })),
  args: Opt(Type.Array(Type.String())),
  env: Opt(Type.Record(Type.String(), EnvValue)),
  workingDir: Opt(Path('inside the container')),
  user: Opt(Type.String({ pattern: '^([a-z_][-a-z0-9_]*|\\d+)(:([a-z_][-a-z0-9_]*|\\d+))?$', 'x-hint': 'a user (a name or uid, optionally :group, e.g. 1000:1000)' })),
  replicas: Opt(Type.Integer({ minimum: 0, maximum: LIMITS.replicasMax })),
  resources: Opt(Obj({
    cpu: Opt(Unit<string | number>('cpu', ['string', 'number'])),
    memory: Opt(Unit<string | number>('memory', ['string', 'number'])),
    pids: Opt(Type.Integer({ minimum: 1, maximum: 4_194_304 })),
  })),
  ports: Opt(Type.Array(Port)),
  volumes: Opt(Type.Array(Volume)),
  secrets: Opt(Type.Array(SecretVolume)),
  health: Opt(Health),
  restart: Opt(StringEnum(RESTART_POLICIES)),
  update: Opt(Obj({
    maxSurge: Opt(IntOrPercent),
    maxUnavailable: Opt(IntOrPercent),
    progressDeadline: Opt(Unit<string>('duration', 'string')),
  })),
  autoscale: Opt(Autoscale),
  dependsOn: Opt(Type.Array(Name, { uniqueItems: true })),
  // Who may connect to this service (its service address and its instances' own); "*": every service.
  allowFrom: Opt(Type.Array(Type.String({
    pattern: `^(\\*|${NAME_PATTERN.slice(1, -1)})$`,
    'x-hint': 'a service name (lowercase letters, digits and "-", starting with a letter), or "*" for every service',
  }), { uniqueItems: true })),
  stopGracePeriod: Opt(Unit<string>('duration', 'string')),
  // Confinement (docs/security.md). What a manifest may ask for here is the server policy's say (src/policy/).
  readOnlyRootfs: Opt(Type.Boolean()),
  capabilities: Opt(Obj({
    add: Opt(Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true })),
    drop: Opt(Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true })),
  })),
  userns: Opt(Type.Boolean()),
});

export const ServiceManifestSchema = Obj({
  apiVersion: Type.Literal(API_VERSION),
  kind: Type.Literal('Service'),
  metadata: Obj({
    name: Name,
    labels: Opt(Type.Record(Type.String(), Type.String())),
  }),
  spec: ServiceSpecSchema,
  // Written by `carte get -o yaml` so its output can be applied again; ignored on apply.
  status: Opt(Type.Unknown()),
});

/**
 * A secret sealed for Git: each value is encrypted (age, armored) to the
 * server's public key by `carte secret seal`, and opened only on the server.
 * Its keys are checked in code (load.ts), for a located message per key.
 */
export const SealedSecretManifestSchema = Obj({
  apiVersion: Type.Literal(API_VERSION),
  kind: Type.Literal('SealedSecret'),
  metadata: Obj({
    name: Name,
    labels: Opt(Type.Record(Type.String(), Type.String())),
  }),
  spec: Obj({
    data: Type.Record(Type.String(), Type.String({ minLength: 1 }), { minProperties: 1 }),
  }),
});

export type SealedSecretManifest = Static<typeof SealedSecretManifestSchema>;

/** A Service manifest exactly as written (after schema validation, before defaults). */
export type ServiceManifest = Static<typeof ServiceManifestSchema>;
export type ServiceSpecInput = ServiceManifest['spec'];
export type PortInput = NonNullable<ServiceSpecInput['ports']>[number];
export type PublishInput = NonNullable<PortInput['publish']>;
export type AnySchema = TSchema;
