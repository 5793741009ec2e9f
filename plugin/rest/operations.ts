/**
 * What operators and their tools read besides the WCS API: Prometheus metrics at /metrics (the API
 * token guards it when one is set: Prometheus sends it as a bearer token) and the OpenAPI document with
 * Swagger UI at /docs (public: it holds no secrets, and "Try it out" still needs the token).
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import type { AppMetrics } from '../metrics/metrics.js';
import { requireToken, type TokenFailureOptions } from './access.js';
import { buildOpenApi } from './openapi.js';

export function registerOperations(app: FastifyInstance, o: { prefix: string; apiToken: string; metrics: AppMetrics; tokenFailure?: TokenFailureOptions }): void {
  app.get('/metrics', { onRequest: requireToken(o.apiToken, o.tokenFailure) }, async (_req, reply) => {
    const body = await o.metrics.scrape();
    return reply.type(o.metrics.registry.contentType).send(body);
  });

  void app.register(swagger, { mode: 'static', specification: { document: buildOpenApi({ prefix: o.prefix, tokenRequired: o.apiToken !== '' }) as never } });
  void app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', tryItOutEnabled: true } });
}
