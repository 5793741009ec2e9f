/**
 * Shutdown on a signal within a bound: stop() ends every call and releases what the app holds; when it has
 * not finished after `timeoutMs`, the app exits anyway, non-zero, and logs what is still held (so an operator
 * knows what to clean up in Asterisk). A second signal exits at once. Pure: exit and the clock are injected.
 */
import type { Logger } from './log.js';

/** What the app still holds, by kind (calls, channels, bridges, pjsipObjects, children...). */
export type Held = Record<string, number>;

export interface ShutdownOptions {
  stop(): Promise<void>;
  timeoutMs: number;
  held(): Held;
  log: Pick<Logger, 'info' | 'warn' | 'error'>;
  exit(code: number): void;
}

/** The kinds with something left, or undefined when nothing is. */
function left(held: Held): Held | undefined {
  const out = Object.fromEntries(Object.entries(held).filter(([, n]) => n > 0));
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * A signal handler. First signal: stop, bounded; exit 0 once everything is released, 1 when stop failed, the
 * bound passed, or something is still held after stop. Second signal: exit 1 at once.
 */
export function shutdownOnSignal(o: ShutdownOptions): (signal: string) => void {
  let stopping = false;
  let exited = false;
  const exit = (code: number) => {
    if (exited) return;
    exited = true;
    o.exit(code);
  };
  return (signal) => {
    if (exited) return;
    if (stopping) {
      o.log.warn({ signal, held: left(o.held()) ?? {} }, 'second signal: exiting now, without releasing the rest');
      exit(1);
      return;
    }
    stopping = true;
    o.log.info({ signal, timeoutMs: o.timeoutMs }, 'stopping: ending every call');
    const started = Date.now();
    // Ref'd on purpose: a stop() stuck on nothing (no socket, no timer) must still end in an exit.
    const timer = setTimeout(() => {
      o.log.error({ timeoutMs: o.timeoutMs, held: left(o.held()) ?? {} }, 'shutdown bound passed: exiting with these not released');
      exit(1);
    }, o.timeoutMs);
    o.stop().then(
      () => {
        clearTimeout(timer);
        if (exited) return;
        const rest = left(o.held());
        if (rest) o.log.error({ held: rest, ms: Date.now() - started }, 'stopped, but these could not be released');
        else o.log.info({ ms: Date.now() - started }, 'stopped: everything released');
        exit(rest ? 1 : 0);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (exited) return;
        o.log.error({ err: err instanceof Error ? err.message : String(err), held: left(o.held()) ?? {} }, 'stop failed');
        exit(1);
      },
    );
  };
}
