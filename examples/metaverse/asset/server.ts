// Asset: upload, download and list game assets. Bytes stream straight to and
// from the named volume (never buffered whole); metadata sits beside them.
//
//   POST   /v1/assets?name=&category=&price=  (Bearer, body = the file) → 201 metadata | 400 | 413
//   GET    /v1/assets[?category=&owner=]      → 200 {items: [metadata]}
//   GET    /v1/assets/ID                      → 200 metadata | 404
//   GET    /v1/assets/ID/content              → 200 the bytes (ETag = sha256)
//   PUT    /v1/assets/ID/thumbnail            (Bearer, owner, body = image) → 200 metadata
//   GET    /v1/assets/ID/thumbnail            → 200 the image
//   DELETE /v1/assets/ID                      (Bearer, owner) → 204 | 403
//   GET    /health
//
// Content and thumbnails are served with their declared type only when it is
// on the allow-list in content-type.ts; anything else (HTML, SVG, scripts…)
// goes out as an application/octet-stream download, never rendered.
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { envInt, envString, tokenSecret } from '../lib/config.js';
import { HttpError, requireUser, router, sendJson, serve, startOrExit, type Ctx } from '../lib/http.js';
import { makeLog } from '../lib/log.js';
import { Catalog, parseUploadQuery } from './catalog.js';
import { delivery, FILE_HEADERS, normalizeContentType } from './content-type.js';

const log = makeLog('asset');

startOrExit(log, () => {
  const env = process.env;
  const port = envInt(env, 'PORT', 8081, { min: 1, max: 65535 });
  const secret = tokenSecret(env);
  const maxUpload = envInt(env, 'MAX_UPLOAD', 8 << 20, { min: 1024 });
  const maxThumb = envInt(env, 'MAX_THUMBNAIL', 256 << 10, { min: 1024 });
  const catalog = new Catalog(envString(env, 'DATA_DIR', '/data'));
  void catalog.sweep().then((n) => n && log.info('removed unfinished uploads', { count: n }));

  const stream = async ({ req, res }: Ctx, file: string, headers: Record<string, string>, etag?: string) => {
    const st = await fs.promises.stat(file).catch(() => null);
    if (!st) throw new HttpError(404, 'not_found', 'no such file');
    if (etag && req.headers['if-none-match'] === `"${etag}"`) {
      res.writeHead(304, { ...FILE_HEADERS, etag: `"${etag}"` }).end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': st.size, ...(etag ? { etag: `"${etag}"` } : {}) });
    await pipeline(fs.createReadStream(file), res);
  };
  const owned = async (ctx: Ctx) => {
    const user = requireUser(ctx.req, secret);
    const meta = await catalog.get(ctx.params.id!);
    if (meta.owner !== user.sub) throw new HttpError(403, 'forbidden', `asset ${meta.id} belongs to ${meta.owner}; only its owner may change it`);
    return meta;
  };

  const handler = router([
    { method: 'GET', path: '/health', handler: ({ res }) => sendJson(res, 200, { status: 'ok' }) },
    {
      method: 'POST', path: '/v1/assets', handler: async ({ req, res, query, log }) => {
        const user = requireUser(req, secret);
        const fields = parseUploadQuery(query);
        if (Number(req.headers['content-length'] ?? 0) > maxUpload) throw new HttpError(413, 'too_large', `asset is larger than ${maxUpload} bytes`);
        const meta = await catalog.create(req, maxUpload, { ...fields, owner: user.sub, contentType: normalizeContentType(req.headers['content-type']) });
        log.info('asset uploaded', { id: meta.id, owner: meta.owner, size: meta.size, category: meta.category });
        sendJson(res, 201, meta, { location: `/v1/assets/${meta.id}` });
      },
    },
    { method: 'GET', path: '/v1/assets', handler: async ({ res, query }) => sendJson(res, 200, { items: await catalog.list({ category: query.get('category'), owner: query.get('owner') }) }) },
    { method: 'GET', path: '/v1/assets/:id', handler: async ({ res, params }) => sendJson(res, 200, await catalog.get(params.id!)) },
    {
      method: 'GET', path: '/v1/assets/:id/content', handler: async (ctx) => {
        const meta = await catalog.get(ctx.params.id!);
        await stream(ctx, catalog.contentPath(meta.id), delivery(meta.contentType, meta.name), meta.sha256);
      },
    },
    {
      method: 'PUT', path: '/v1/assets/:id/thumbnail', handler: async (ctx) => {
        const meta = await owned(ctx);
        sendJson(ctx.res, 200, await catalog.setThumbnail(meta, ctx.req, maxThumb, normalizeContentType(ctx.req.headers['content-type'])));
      },
    },
    {
      method: 'GET', path: '/v1/assets/:id/thumbnail', handler: async (ctx) => {
        const meta = await catalog.get(ctx.params.id!);
        if (!meta.thumbnail) throw new HttpError(404, 'not_found', `asset ${meta.id} has no thumbnail`);
        await stream(ctx, catalog.thumbPath(meta.id), delivery(meta.thumbnailType ?? 'application/octet-stream', `${meta.name}.thumbnail`));
      },
    },
    {
      method: 'DELETE', path: '/v1/assets/:id', handler: async (ctx) => {
        const meta = await owned(ctx);
        await catalog.remove(meta.id);
        ctx.log.info('asset deleted', { id: meta.id, owner: meta.owner });
        sendJson(ctx.res, 204, null);
      },
    },
  ], log);

  serve(handler, port, log, async () => {});
});
