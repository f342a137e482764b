/**
 * A small pool of Deno module workers running data/worker.ts, answering one request at a time
 * each. Used for parallel image decoding (cache build) and synthetic data generation off the
 * main thread. Requests go to the worker with the fewest in flight.
 */

export interface WorkerRequest {
  op: string;
  [key: string]: unknown;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly inFlight: number[] = [];
  private readonly pending = new Map<number, Pending & { worker: number }>();
  private nextId = 1;
  private closed = false;

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new Error(`WorkerPool: need at least one worker, got ${size}`);
    for (let w = 0; w < size; w++) {
      this.workers.push(this.spawn(w));
      this.inFlight.push(0);
    }
  }

  private spawn(w: number): Worker {
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    worker.onmessage = (e: MessageEvent) => this.onMessage(w, e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.failWorker(w, new Error(`data worker ${w} crashed: ${e.message}`));
      // Replace it so later requests still run (state set up by broadcast is lost).
      worker.terminate();
      if (!this.closed) this.workers[w] = this.spawn(w);
    };
    return worker;
  }

  /** Sends a request to the least-busy worker; resolves with its result. */
  run<T>(req: WorkerRequest, transfer: Transferable[] = []): Promise<T> {
    if (this.closed) return Promise.reject(new Error("WorkerPool is closed"));
    let w = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.inFlight[i] < this.inFlight[w]) w = i;
    return this.runOn<T>(w, req, transfer);
  }

  /** Sends a request to every worker (e.g. to share a cache), resolving when all answered. */
  broadcast(req: WorkerRequest): Promise<unknown[]> {
    return Promise.all(this.workers.map((_, w) => this.runOn(w, req, [])));
  }

  private runOn<T>(w: number, req: WorkerRequest, transfer: Transferable[]): Promise<T> {
    const id = this.nextId++;
    this.inFlight[w]++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, worker: w });
      this.workers[w].postMessage({ id, req }, transfer);
    });
  }

  private onMessage(w: number, msg: { id: number; result?: unknown; error?: string }) {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    this.inFlight[w]--;
    if (msg.error !== undefined) p.reject(new Error(msg.error));
    else p.resolve(msg.result);
  }

  private failWorker(w: number, err: Error) {
    for (const [id, p] of this.pending) {
      if (p.worker !== w) continue;
      this.pending.delete(id);
      this.inFlight[w]--;
      p.reject(err);
    }
  }

  /** Terminates the workers; pending requests are rejected. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.workers) w.terminate();
    for (const p of this.pending.values()) p.reject(new Error("WorkerPool closed"));
    this.pending.clear();
  }
}
