/**
 * The HTTPS listener (HTTPS_PORT): a TLS server that hands every request to the app's own HTTP server
 * (fastify's), so the API, console, docs, live feed and preview are the very same routes over TLS, hooks
 * and limits included, not a second copy. The app has no upgrade (WebSocket) routes: none is forwarded.
 */
import { readFileSync } from 'node:fs';
import type { Server as HttpServer, ServerOptions as HttpServerOptions } from 'node:http';
import { createServer, type Server } from 'node:https';

export interface HttpsListenerOptions {
  host: string;
  /** 0: any free port (tests). */
  port: number;
  certFile: string;
  keyFile: string;
  /** The same timeouts as the plain listener (headers, request, keep-alive, checking interval). */
  serverOptions: HttpServerOptions;
  maxConnections: number;
  /** The app's HTTP server: its 'request' listeners answer (it need not listen itself). */
  app: HttpServer;
}

export class HttpsListener {
  private readonly server: Server;

  constructor(private readonly o: HttpsListenerOptions) {
    // Read now: a bad file fails the start, with its name (config.ts already checked they are readable).
    this.server = createServer({
      ...o.serverOptions,
      // A TLS handshake that drags on is a slowloris too: it gets the headers' time (Node's default is 120 s).
      ...(o.serverOptions.headersTimeout ? { handshakeTimeout: o.serverOptions.headersTimeout } : {}),
      cert: readFileSync(o.certFile),
      key: readFileSync(o.keyFile),
    }, (req, res) => {
      o.app.emit('request', req, res);
    });
    this.server.maxConnections = o.maxConnections;

  }

  /** Listens; resolves to the port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.o.host, port: this.o.port }, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve(addr && typeof addr === 'object' ? addr.port : this.o.port);
      });
    });
  }

  /** Stops listening and drops every connection (an open live feed or preview would hold it open). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
