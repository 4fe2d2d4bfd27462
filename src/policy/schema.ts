// The JSON Schema of the server policy file (/etc/carte/policy.yaml), built
// with TypeBox like the manifest schema, so the raw type is derived from it.
// Every object refuses unknown fields: a misspelt rule must never silently
// leave a door open. Rules that span fields live in load.ts.
import { Type, type Static } from '@sinclair/typebox';
import { LIMITS } from '../schema/types.js';

const Obj = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: false });
const Opt = Type.Optional;
const Unit = <T>(unit: 'cpu' | 'memory' | 'duration', type: string | string[]) => Type.Unsafe<T>({ type, 'x-unit': unit });
const AbsolutePath = Type.String({ pattern: '^/', 'x-hint': 'an absolute path (a folder on the host, starting with /)' });

const Limits = Obj({
  cpu: Opt(Unit<string | number>('cpu', ['string', 'number'])),
  memory: Opt(Unit<string | number>('memory', ['string', 'number'])),
  pids: Opt(Type.Integer({ minimum: 1, maximum: 4_194_304 })),
});

/** The rules, at the top level and in each `sources` section (where each field overrides the top level's). */
const rules = {
  volumes: Opt(Obj({
    hostPaths: Opt(Type.Array(Obj({ path: AbsolutePath, write: Opt(Type.Boolean()) }))),
  })),
  resources: Opt(Obj({ default: Opt(Limits), max: Opt(Limits) })),
  replicas: Opt(Obj({
    perService: Opt(Type.Integer({ minimum: 0, maximum: LIMITS.replicasMax })),
    total: Opt(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  })),
  capabilities: Opt(Obj({ allowAdd: Opt(Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true })) })),
  userns: Opt(Obj({ default: Opt(Type.Boolean()), required: Opt(Type.Boolean()) })),
  builds: Opt(Obj({
    hostCopyPrefixes: Opt(Type.Array(AbsolutePath)),
    contextInsideSource: Opt(Type.Boolean()),
    /** Whether `carte build --network` may give RUN steps the network. */
    network: Opt(Type.Boolean()),
    /** What one RUN step's build container may use. */
    limits: Opt(Obj({
      cpu: Opt(Unit<string | number>('cpu', ['string', 'number'])),
      memory: Opt(Unit<string | number>('memory', ['string', 'number'])),
      pids: Opt(Type.Integer({ minimum: 1, maximum: 4_194_304 })),
      timeout: Opt(Unit<string>('duration', 'string')),
    })),
  })),
  network: Opt(Obj({
    hostPorts: Opt(Type.Array(Obj({
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
      protocol: Opt(Type.Unsafe<'tcp' | 'udp'>({ type: 'string', enum: ['tcp', 'udp'] })),
    }))),
    allowFromDefault: Opt(Type.Unsafe<'same-source' | 'all' | 'none'>({ type: 'string', enum: ['same-source', 'all', 'none'] })),
  })),
  disk: Opt(Obj({
    reserve: Opt(Unit<string | number>('memory', ['string', 'number'])),
    perService: Opt(Unit<string | number>('memory', ['string', 'number'])),
  })),
};

export const PolicyRulesSchema = Obj(rules);

export const PolicySchema = Obj({
  ...rules,
  sources: Opt(Type.Array(Obj({
    match: Type.String({ minLength: 1 }),
    ...rules,
  }))),
});

/** The policy file exactly as written (after schema validation). */
export type PolicyInput = Static<typeof PolicySchema>;
export type PolicyRulesInput = Static<typeof PolicyRulesSchema>;
