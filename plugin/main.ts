/**
 * npm start: the plugin alone, against the Asterisk named by the configuration (environment or CONFIG_FILE).
 * SIGINT/SIGTERM end every call cleanly (calls FINISH, streams unpublished) before exiting, within
 * SHUTDOWN_TIMEOUT_MS; a second signal exits at once (plugin/lib/shutdown.ts).
 */
import { createApp } from './app.js';
import { ConfigError, describeConfig, loadConfig } from './config.js';
import { shutdownOnSignal } from './lib/shutdown.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`sip-as-rtmp: configuration error: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
const app = createApp(config);
app.log.info({ config: describeConfig(config) }, 'configuration');
// A bug in one call's handling must not end every other call: log it loudly and keep serving.
process.on('unhandledRejection', (reason) => {
  app.log.error({ err: reason instanceof Error ? reason.stack : String(reason) }, 'unhandled rejection (a bug: please report it)');
});
const onSignal = shutdownOnSignal({
  stop: () => app.stop(),
  timeoutMs: config.shutdownTimeoutMs,
  held: () => app.held(),
  log: app.log,
  exit: (code) => process.exit(code),
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => onSignal(sig));
try {
  await app.start();
} catch (err) {
  app.log.fatal({ err: (err as Error).message }, 'could not start');
  process.exit(1);
}
