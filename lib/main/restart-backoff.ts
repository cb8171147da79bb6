export const RESTART_BASE_DELAY_MS = 100;
export const RESTART_FACTOR = 1.5;
export const RESTART_MAX_DELAY_MS = 15_000;
/** A worker that served this long before it died was not in a crash loop: it is replaced at once. */
export const HEALTHY_UPTIME_MS = 1_000;

/** Holds back worker starts after failures in a row, exponentially: one wait at a time. */
export class RestartBackoff {
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;

  get waiting(): boolean {
    return this.#timer !== undefined;
  }

  /** A worker exited: `failed` it, and how long it had served. */
  record(failed: boolean, uptime: number): void {
    if (!failed || uptime >= HEALTHY_UPTIME_MS) this.#failures = 0;
    else this.#failures++;
  }

  /** Runs `start` now or, after failures, once the delay has passed; nothing while a wait is on. */
  run(start: () => void): void {
    if (this.#timer) return;
    if (this.#failures === 0) {
      start();
      return;
    }
    const delay = Math.min(RESTART_BASE_DELAY_MS * RESTART_FACTOR ** (this.#failures - 1), RESTART_MAX_DELAY_MS);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      start();
    }, delay).unref();
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
