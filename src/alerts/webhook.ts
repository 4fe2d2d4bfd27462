// Delivering alerts to webhooks: a JSON POST per firing and per resolution,
// in the background. Each webhook has its own bounded queue and one worker, so
// a webhook that is slow or never answers holds up only itself: send() returns
// at once, the engine never waits, and the reconciler and the collector never
// see a webhook at all. A failed POST (no answer within its timeout, a refused
// connection, a 408, 429 or 5xx) is retried with exponential backoff, in
// order; a full queue drops its oldest notification with a warning.
//
// The body (docs/observability.md, "Webhook body"):
//   { "status": "firing" | "resolved", "alert": Alert, "host": hostname }
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import type { WebhookConfig } from './config.js';
import type { Alert } from './types.js';

export interface WebhookBody {
  status: 'firing' | 'resolved';
  alert: Alert;
  /** The machine the daemon runs on (os.hostname()). */
  host: string;
}

export interface WebhookOptions {
  webhooks: readonly WebhookConfig[];
  log: Logger;
  /** Notifications waiting per webhook, beyond the one being sent (default 100). */
  queueLimit?: number;
  /** Tries per notification, the first included (default 8). */
  maxAttempts?: number;
  /** Backoff before try n+1: baseMs·2^(n−1), at most maxMs (default 1 s … 5 min). */
  backoff?: { baseMs: number; maxMs: number };
  host?: string;
}

export const DEFAULT_QUEUE_LIMIT = 100;
export const DEFAULT_MAX_ATTEMPTS = 8;
export const DEFAULT_BACKOFF = { baseMs: 1000, maxMs: 5 * 60_000 };

/** The wait before try `attempt + 1` (attempt ≥ 1). */
export function backoffMs(attempt: number, b: { baseMs: number; maxMs: number } = DEFAULT_BACKOFF): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.min(30, attempt - 1));
}

type Outcome = { ok: true } | { ok: false; retry: boolean; why: string };

class Target {
  readonly queue: WebhookBody[] = [];
  private worker: Promise<void> | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  private inFlight: http.ClientRequest | null = null;
  delivered = 0;
  dropped = 0;

  constructor(readonly cfg: WebhookConfig, private readonly opts: Required<Omit<WebhookOptions, 'webhooks' | 'host'>>) {}

  push(body: WebhookBody): void {
    if (this.closed) return;
    if (this.queue.length >= this.opts.queueLimit) {
      const old = this.queue.shift()!;
      this.dropped++;
      this.opts.log.warn({ webhook: redact(this.cfg.url), alert: old.alert.id, status: old.status, queued: this.opts.queueLimit }, 'webhook queue full; dropped its oldest notification');
    }
    this.queue.push(body);
    this.worker ??= this.run().finally(() => (this.worker = null));
  }

  private async run(): Promise<void> {
    while (!this.closed && this.queue.length) {
      const body = this.queue.shift()!;
      for (let attempt = 1; !this.closed; attempt++) {
        const r = await this.post(body);
        if (r.ok) {
          this.delivered++;
          break;
        }
        const log = { webhook: redact(this.cfg.url), alert: body.alert.id, status: body.status, attempt, err: r.why };
        if (!r.retry || attempt >= this.opts.maxAttempts) {
          this.opts.log.error(log, r.retry ? 'webhook delivery failed; giving up on this notification' : 'webhook refused the notification; not retried');
          break;
        }
        const wait = backoffMs(attempt, this.opts.backoff);
        this.opts.log.warn({ ...log, retryInMs: wait }, 'webhook delivery failed; retrying');
        await this.sleep(wait);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private post(body: WebhookBody): Promise<Outcome> {
    const payload = Buffer.from(JSON.stringify(body));
    const url = new URL(this.cfg.url);
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const finish = (o: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.inFlight = null;
        resolve(o);
      };
      const req = lib.request(url, {
        method: 'POST',
        agent: false, // one connection per notification: nothing kept open between them
        headers: { ...this.cfg.headers, 'content-type': 'application/json', 'content-length': payload.length, 'user-agent': `carte/${VERSION}` },
      }, (res) => {
        res.resume(); // the answer's body is not read, only drained
        const code = res.statusCode ?? 0;
        const done = () => finish(code >= 200 && code < 300 ? { ok: true }
          : { ok: false, retry: code >= 500 || code === 408 || code === 429, why: `answered ${code}` });
        res.on('end', done);
        res.on('close', done);
      });
      // The whole exchange, connect to last byte: a server that accepts and never answers costs one timeout.
      const timer = setTimeout(() => {
        req.destroy();
        finish({ ok: false, retry: true, why: `no answer within ${this.cfg.timeoutMs}ms` });
      }, this.cfg.timeoutMs);
      timer.unref();
      req.on('error', (e) => finish({ ok: false, retry: true, why: e.message }));
      this.inFlight = req;
      req.end(payload);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.inFlight?.destroy();
    this.wake?.();
    await this.worker;
    if (this.queue.length) this.opts.log.warn({ webhook: redact(this.cfg.url), undelivered: this.queue.length }, 'webhook notifications left undelivered at shutdown');
  }

  get idle(): boolean {
    return this.worker === null;
  }
}

/** A URL for logs: without its password or query (either may hold a token). */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    if (u.search) u.search = '?…';
    return u.href;
  } catch {
    return '<bad url>';
  }
}

export class WebhookSender {
  private readonly targets: Target[];
  private readonly host: string;

  constructor(opts: WebhookOptions) {
    const rest = {
      log: opts.log, queueLimit: opts.queueLimit ?? DEFAULT_QUEUE_LIMIT, maxAttempts: opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, backoff: opts.backoff ?? DEFAULT_BACKOFF,
    };
    this.targets = opts.webhooks.map((w) => new Target(w, rest));
    this.host = opts.host ?? os.hostname();
  }

  /** Queues the notification for every webhook and returns at once. */
  send(status: WebhookBody['status'], alert: Alert): void {
    for (const t of this.targets) t.push({ status, alert, host: this.host });
  }

  /** Per webhook: waiting, delivered, dropped (for tests and logs). */
  stats(): Array<{ url: string; waiting: number; delivered: number; dropped: number; idle: boolean }> {
    return this.targets.map((t) => ({ url: t.cfg.url, waiting: t.queue.length, delivered: t.delivered, dropped: t.dropped, idle: t.idle }));
  }

  /** Stops every worker at once (a request in flight is cut); what waits is not sent. */
  async close(): Promise<void> {
    await Promise.all(this.targets.map((t) => t.close()));
  }
}
