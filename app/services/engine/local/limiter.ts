/** Why a call got no slot: the queue was full, or it waited its whole allowance. */
export class NoSlot extends Error {
  override name = "NoSlot";
  constructor(readonly reason: "queue_full" | "wait_expired") {
    super(reason === "queue_full" ? "too many calls are waiting" : "waited too long for a free slot");
  }
}

export type LimiterOptions = {
  /** Calls that may wait per key once `max` are running; more are refused at once. */
  queueLimit: number;
  /** How long a call may wait for a slot before it is refused. */
  queueWaitMs: number;
};

type Waiter = {
  grant: () => void;
  fail: (error: unknown) => void;
};

type Lane = { running: number; max: number; waiting: Waiter[] };

/**
 * Bounds concurrent runs per key (one key per route), FIFO, with a bounded queue and a bounded
 * wait: a route that gets more calls than it can run answers "busy" quickly instead of piling up
 * processes or requests.
 */
export class ConcurrencyLimiter {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly options: LimiterOptions) {}

  /**
   * Resolves with a release function once a slot is free. Throws NoSlot("queue_full") at once,
   * before returning, so a caller can refuse a call without waiting; the promise rejects with
   * NoSlot("wait_expired") or the abort reason.
   */
  acquire(key: string, max: number, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { running: 0, max, waiting: [] };
      this.lanes.set(key, lane);
    }
    // A route update changes the bound for calls from now on.
    lane.max = Math.max(1, max);
    const owner = lane;
    if (owner.running < owner.max && owner.waiting.length === 0) {
      owner.running++;
      return Promise.resolve(this.releaser(key, owner));
    }
    if (owner.waiting.length >= this.options.queueLimit) {
      this.dropIfIdle(key, owner);
      throw new NoSlot("queue_full");
    }
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const index = owner.waiting.indexOf(waiter);
        if (index >= 0) owner.waiting.splice(index, 1);
        this.dropIfIdle(key, owner);
      };
      const waiter: Waiter = {
        grant: () => {
          cleanup();
          resolve(this.releaser(key, owner));
        },
        fail: (error) => {
          cleanup();
          reject(error);
        },
      };
      const onAbort = () => waiter.fail(signal?.reason);
      const timer = setTimeout(() => waiter.fail(new NoSlot("wait_expired")), this.options.queueWaitMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      owner.waiting.push(waiter);
    });
  }

  /** Calls running and waiting, over all keys: for tests and metrics. */
  activity(): { running: number; waiting: number } {
    let running = 0;
    let waiting = 0;
    for (const lane of this.lanes.values()) {
      running += lane.running;
      waiting += lane.waiting.length;
    }
    return { running, waiting };
  }

  private releaser(key: string, lane: Lane): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      lane.running--;
      while (lane.running < lane.max && lane.waiting.length > 0) {
        lane.running++;
        lane.waiting[0]?.grant();
      }
      this.dropIfIdle(key, lane);
    };
  }

  private dropIfIdle(key: string, lane: Lane): void {
    if (lane.running === 0 && lane.waiting.length === 0 && this.lanes.get(key) === lane)
      this.lanes.delete(key);
  }
}
