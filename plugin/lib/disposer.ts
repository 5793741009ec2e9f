/**
 * Everything a call acquires is registered here as it is acquired; dispose() releases it all, newest
 * first, each step guarded so one failure never keeps the rest held. This is the one place that knows
 * what a call owns, so "released however the call ends" is one call to dispose().
 */
export interface DisposeFailure {
  name: string;
  error: unknown;
}

export class Disposer {
  private readonly steps: { name: string; fn: () => unknown }[] = [];
  private disposing: Promise<DisposeFailure[]> | undefined;

  /**
   * Register a release step. If already disposed, runs it at once (the resource came in too late).
   * Returns a function that drops the step unrun: for a resource released before the call ends (a
   * preview viewer leaving), so the list doesn't grow for the whole call.
   */
  add(name: string, fn: () => unknown): () => void {
    if (this.disposing) {
      void this.disposing.then(() => run(name, fn));
      return () => {};
    }
    const step = { name, fn };
    this.steps.push(step);
    return () => {
      const i = this.steps.indexOf(step);
      if (i >= 0) this.steps.splice(i, 1);
    };
  }

  /** What is held now, by name (for stats and leak tests). */
  get held(): string[] {
    return this.steps.map((s) => s.name);
  }

  get disposed(): boolean {
    return this.disposing !== undefined;
  }

  dispose(): Promise<DisposeFailure[]> {
    this.disposing ??= (async () => {
      const failures: DisposeFailure[] = [];
      while (this.steps.length) {
        const s = this.steps.pop()!;
        const f = await run(s.name, s.fn);
        if (f) failures.push(f);
      }
      return failures;
    })();
    return this.disposing;
  }
}

async function run(name: string, fn: () => unknown): Promise<DisposeFailure | undefined> {
  try {
    await fn();
    return undefined;
  } catch (error) {
    return { name, error };
  }
}
