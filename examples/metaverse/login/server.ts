// Login: sign up and log in over HTTP. Accounts live in Redis (one hash,
// field per user, HSETNX so two sign-ups of one name cannot both win);
// passwords are scrypt hashes; a login returns an HMAC-signed session token
// that Asset, Map and Game verify on their own.
//
//   POST /v1/signup {name, password}  → 201 {name, createdAt} | 400 | 409 user_exists
//   POST /v1/login  {name, password}  → 200 {token, name, expiresAt} | 401 invalid_credentials
//                                       | 429 too_many_attempts (Retry-After)
//   GET  /v1/me     (Bearer)          → 200 {name, expiresAt}
//   GET  /health                      → 200 when Redis answers, else 503
//
// Failed logins are limited per name and per client address (limits.ts),
// checked before the scrypt. Behind carte's TCP gateway every client has the
// gateway's address, so the per-address limit counts all of them together.
import { envInt, redisTarget, tokenSecret } from '../lib/config.js';
import { HttpError, readJson, requireUser, router, sendJson, serve, startOrExit } from '../lib/http.js';
import { makeLog } from '../lib/log.js';
import { Redis } from '../lib/redis.js';
import { signToken } from '../lib/token.js';
import { checkPassword, hashPassword, parseCredentials, type StoredAccount } from './accounts.js';
import { clientAddress, FailedLogins, parseTrustedProxies } from './limits.js';

const USERS = 'metaverse:users';
const log = makeLog('login');

startOrExit(log, () => {
  const env = process.env;
  const port = envInt(env, 'PORT', 8080, { min: 1, max: 65535 });
  const secret = tokenSecret(env);
  const ttl = envInt(env, 'TOKEN_TTL_SECONDS', 3600, { min: 60, max: 7 * 86400 });
  const N = envInt(env, 'SCRYPT_N', 16384, { min: 1024, max: 1 << 20 });
  const trusted = parseTrustedProxies(env.TRUSTED_PROXIES);
  const redis = new Redis(redisTarget(env), log);
  redis.start();
  const failures = new FailedLogins(redis, {
    perName: envInt(env, 'LOGIN_MAX_FAILURES_PER_NAME', 5, { max: 1_000_000 }),
    perAddress: envInt(env, 'LOGIN_MAX_FAILURES_PER_ADDRESS', 30, { max: 1_000_000 }),
    windowMs: 1000 * envInt(env, 'LOGIN_FAILURE_WINDOW_SECONDS', 300, { min: 1, max: 86400 }),
  });
  // Unknown users are checked against this, so both failures cost one scrypt (no user enumeration by timing).
  const decoy = hashPassword('decoy', 'decoy-password', N);

  const handler = router([
    { method: 'GET', path: '/health', handler: ({ res }) => sendJson(res, redis.ready ? 200 : 503, { status: redis.ready ? 'ok' : 'redis unavailable' }) },
    {
      method: 'POST', path: '/v1/signup', handler: async ({ req, res, log }) => {
        const { name, password } = parseCredentials(await readJson(req, 4096));
        if (await redis.int('HEXISTS', USERS, name)) throw new HttpError(409, 'user_exists', `user "${name}" already exists (log in, or pick another name)`);
        const account = await hashPassword(name, password, N);
        if (!(await redis.int('HSETNX', USERS, name, JSON.stringify(account)))) throw new HttpError(409, 'user_exists', `user "${name}" already exists (log in, or pick another name)`);
        log.info('signed up', { user: name });
        sendJson(res, 201, { name, createdAt: account.createdAt });
      },
    },
    {
      method: 'POST', path: '/v1/login', handler: async ({ req, res, log }) => {
        const { name, password } = parseCredentials(await readJson(req, 4096));
        const address = clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], trusted);
        const attempt = await failures.begin(name, address);
        const raw = await redis.str('HGET', USERS, name);
        const account = raw ? (JSON.parse(raw) as StoredAccount) : await decoy;
        if (!(await checkPassword(account, password)) || !raw) {
          log.info('login refused', { user: name, address });
          throw new HttpError(401, 'invalid_credentials', 'wrong name or password');
        }
        await attempt.succeeded();
        const exp = Math.floor(Date.now() / 1000) + ttl;
        sendJson(res, 200, { token: signToken({ sub: name, exp, use: 'session' }, secret), name, expiresAt: new Date(exp * 1000).toISOString() });
      },
    },
    {
      method: 'GET', path: '/v1/me', handler: ({ req, res }) => {
        const user = requireUser(req, secret);
        sendJson(res, 200, { name: user.sub, expiresAt: new Date(user.exp * 1000).toISOString() });
      },
    },
  ], log);

  serve(handler, port, log, () => redis.close());
});
