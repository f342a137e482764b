/**
 * Modules in torch.nn's shape: parameters, buffers and children registered in
 * order, so `namedParameters()`, `namedBuffers()` and `stateDict()` list the
 * same names in the same order as torch's `state_dict()` (a module's own
 * parameters, then its own buffers, then each child's, recursively).
 */
import type { Backend, BTensor, Shape } from "./backend.ts";
import { Var } from "./autograd.ts";
import * as ops from "./ops.ts";
import { constInit, type Init, uniform, zerosInit } from "./init.ts";
import type { Rng } from "../util/rng.ts";

/** Forward-time options passed down through every module. */
export interface Ctx {
  /** Split BN: the batch is this many consecutive sub-batches with their own statistics. */
  bnGroups?: number;
  /**
   * "f16": the backbone stores activations (and casts of the weights) as f16 and computes in
   * f32; features come out as f32 (ClassifierNet.features). Default f32.
   */
  precision?: "f32" | "f16";
  /**
   * Grad-CAM on a stage before the last: a network that supports it pushes each intermediate
   * stage output here (named, with its gradient kept); the caller disposes them.
   */
  taps?: { name: string; map: Var }[];
}

/** A trainable tensor; `requiresGrad = false` freezes it (no gradient, no optimizer state). */
export class Parameter extends Var {
  /** A trainable leaf holding `value` (requires a gradient). */
  constructor(backend: Backend, value: BTensor) {
    super(backend, value, { requiresGrad: true, leaf: true });
  }
}

/** A float buffer (running statistics), or the integer batch counter. */
export class Buffer {
  /** A buffer over `value`. */
  constructor(public value: BTensor) {}
}
/** BN's num_batches_tracked: an integer kept on the host. */
export class Counter {
  /** The count. */
  value = 0;
}

/** One state_dict entry: F32 for parameters and float buffers, I64 for counters. */
export interface StateEntry {
  /** torchvision's dotted name. */
  name: string;
  /** Dimensions ([] for the counter). */
  shape: number[];
  /** F32 values, or I64 for the counter. */
  dtype: "F32" | "I64";
  /** Trained parameter or saved buffer. */
  kind: "parameter" | "buffer";
  /** The current values. */
  read(): Promise<Float32Array | BigInt64Array>;
  /** The backend tensor holding an F32 entry's values (read many at once: `readState`). */
  tensor?: () => BTensor;
  /** Overwrites the values (same length). */
  write(data: Float32Array | BigInt64Array): void;
}

/** A torch.nn-style module: named parameters, buffers and children, train/eval mode. */
export abstract class Module {
  /** Train mode (batch statistics in BN) or eval mode. */
  training = true;
  /** The backend its tensors live on. */
  readonly backend: Backend;
  private ownParams: [string, Parameter][] = [];
  private ownBuffers: [string, Buffer | Counter][] = [];
  private kids: [string, Module][] = [];

  /** A module whose tensors live on `backend`. */
  constructor(backend: Backend) {
    this.backend = backend;
  }

  /** The module applied to x. */
  abstract forward(x: Var, ctx?: Ctx): Var;

  /** Registers a parameter under `name`. */
  protected param(name: string, shape: Shape, init: Init): Parameter {
    const p = new Parameter(this.backend, this.backend.fromArray(init(shape), shape));
    this.ownParams.push([name, p]);
    return p;
  }

  /** Registers a buffer (saved, not trained) under `name`. */
  protected buffer<T extends Buffer | Counter>(name: string, b: T): T {
    this.ownBuffers.push([name, b]);
    return b;
  }

  /** Registers a submodule under `name`. */
  protected child<M extends Module>(name: string, m: M): M {
    this.kids.push([name, m]);
    return m;
  }

  /** Swaps a registered child (a new classifier head), disposing the old one. */
  replaceChild<M extends Module>(name: string, m: M): M {
    const i = this.kids.findIndex(([n]) => n === name);
    if (i < 0) throw new Error(`no child module named "${name}"`);
    this.kids[i][1].dispose();
    this.kids[i] = [name, m];
    m.train(this.training);
    return m;
  }

  /** Direct submodules with their names. */
  children(): [string, Module][] {
    return [...this.kids];
  }

  /** Every parameter with its torch-style dotted name. */
  namedParameters(prefix = ""): [string, Parameter][] {
    const out: [string, Parameter][] = this.ownParams.map(([n, p]) => [prefix + n, p]);
    for (const [n, m] of this.kids) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** Every parameter, in namedParameters order. */
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Parameters that get gradients (the optimizer's list). */
  trainableParameters(): Parameter[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }

  /** Every buffer with its torch-style dotted name. */
  namedBuffers(prefix = ""): [string, Buffer | Counter][] {
    const out: [string, Buffer | Counter][] = this.ownBuffers.map(([n, b]) => [prefix + n, b]);
    for (const [n, m] of this.kids) out.push(...m.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Everything a checkpoint holds, in torch's state_dict order. */
  stateDict(prefix = ""): StateEntry[] {
    const B = this.backend;
    const out: StateEntry[] = [];
    const tensorEntry = (name: string, get: () => BTensor, kind: StateEntry["kind"]) => ({
      name,
      shape: [...get().shape],
      dtype: "F32" as const,
      kind,
      read: () => B.read(get()),
      tensor: get,
      write: (d: Float32Array | BigInt64Array) => {
        if (!(d instanceof Float32Array)) throw new Error(`${name}: expected float data`);
        B.write(get(), d);
      },
    });
    for (const [n, p] of this.ownParams) {
      out.push(tensorEntry(prefix + n, () => p.value, "parameter"));
    }
    for (const [n, b] of this.ownBuffers) {
      if (b instanceof Buffer) out.push(tensorEntry(prefix + n, () => b.value, "buffer"));
      else {
        out.push({
          name: prefix + n,
          shape: [],
          dtype: "I64",
          kind: "buffer",
          read: () => Promise.resolve(BigInt64Array.of(BigInt(b.value))),
          write: (d) => void (b.value = Number(d[0])),
        });
      }
    }
    for (const [n, m] of this.kids) out.push(...m.stateDict(`${prefix}${n}.`));
    return out;
  }

  /** Sets train (or eval) mode on this module and its children. */
  train(mode = true): this {
    this.training = mode;
    for (const [, m] of this.kids) m.train(mode);
    return this;
  }

  /** Eval mode: running statistics in BN. */
  eval(): this {
    return this.train(false);
  }

  /** Freezes (or unfreezes) every parameter. */
  requiresGrad(on: boolean): this {
    for (const p of this.parameters()) {
      p.requiresGrad = on;
      if (!on) p.zeroGrad();
    }
    return this;
  }

  /** Drops every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** Frees parameters and buffers. */
  dispose(): void {
    for (const [, p] of this.ownParams) {
      p.zeroGrad();
      this.backend.dispose(p.value);
    }
    for (const [, b] of this.ownBuffers) if (b instanceof Buffer) this.backend.dispose(b.value);
    for (const [, m] of this.kids) m.dispose();
  }
}

/** Number of parameter elements (torch's sum(p.numel())). */
export function countParameters(m: Module): number {
  return m.parameters().reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * torch.nn.Conv2d (square kernel). A bias (`bias: true`) starts as `biasInit`, else as torch's
 * default U(±1/√fan_in), fan_in = inC·k·k, drawn from `rng` (one of the two is then required).
 */
export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: number;
  readonly pad: number;

  constructor(
    backend: Backend,
    inC: number,
    outC: number,
    k: number,
    o: {
      stride?: number;
      pad?: number;
      bias?: boolean;
      init: Init;
      biasInit?: Init;
      rng?: Rng;
    },
  ) {
    super(backend);
    this.stride = o.stride ?? 1;
    this.pad = o.pad ?? 0;
    this.weight = this.param("weight", [outC, inC, k, k], o.init);
    let biasInit = o.biasInit;
    if (o.bias && !biasInit) {
      if (!o.rng) throw new Error("Conv2d with a bias needs biasInit or rng (torch's default)");
      biasInit = uniform(o.rng, 1 / Math.sqrt(inC * k * k));
    }
    this.bias = biasInit && o.bias ? this.param("bias", [outC], biasInit) : null;
  }

  /** Runs in x's storage type: on f16 input, the f32 weights are cast for this call. */
  forward(x: Var): Var {
    const o = { stride: this.stride, pad: this.pad };
    const d = this.backend.dtype(x.value);
    if (d === "f32") return ops.conv2d(x, this.weight, this.bias, o);
    const w = ops.cast(this.weight, d), b = this.bias && ops.cast(this.bias, d);
    const y = ops.conv2d(x, w, b, o);
    w.release();
    b?.release();
    return y;
  }
}

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(
    backend: Backend,
    inF: number,
    outF: number,
    o: { bias?: boolean; init: { weight: Init; bias: Init } },
  ) {
    super(backend);
    this.weight = this.param("weight", [outF, inF], o.init.weight);
    this.bias = (o.bias ?? true) ? this.param("bias", [outF], o.init.bias) : null;
  }

  forward(x: Var): Var {
    return ops.linear(x, this.weight, this.bias);
  }
}

export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Buffer;
  readonly runningVar: Buffer;
  readonly numBatchesTracked: Counter;
  momentum: number;
  eps: number;

  constructor(backend: Backend, channels: number, o: { momentum?: number; eps?: number } = {}) {
    super(backend);
    this.momentum = o.momentum ?? 0.1;
    this.eps = o.eps ?? 1e-5;
    this.weight = this.param("weight", [channels], constInit(1));
    this.bias = this.param("bias", [channels], zerosInit);
    this.runningMean = this.buffer("running_mean", new Buffer(backend.zeros([channels])));
    this.runningVar = this.buffer(
      "running_var",
      new Buffer(backend.fromArray(new Float32Array(channels).fill(1), [channels])),
    );
    this.numBatchesTracked = this.buffer("num_batches_tracked", new Counter());
  }

  forward(x: Var, ctx: Ctx = {}, relu = false): Var {
    if (this.training) this.numBatchesTracked.value++;
    return ops.batchNorm(
      x,
      this.weight,
      this.bias,
      this.runningMean.value,
      this.runningVar.value,
      {
        training: this.training,
        momentum: this.momentum,
        eps: this.eps,
        relu,
        groups: ctx.bnGroups ?? 1,
      },
    );
  }
}

export class ReLU extends Module {
  forward(x: Var): Var {
    return ops.relu(x);
  }
}

export class MaxPool2d extends Module {
  constructor(backend: Backend, readonly k: number, readonly stride: number, readonly pad = 0) {
    super(backend);
  }
  forward(x: Var): Var {
    return ops.maxPool2d(x, { k: this.k, stride: this.stride, pad: this.pad });
  }
}

export class AvgPool2d extends Module {
  constructor(backend: Backend, readonly k: number, readonly stride: number) {
    super(backend);
  }
  forward(x: Var): Var {
    return ops.avgPool2d(x, { k: this.k, stride: this.stride });
  }
}

/** AdaptiveAvgPool2d((1,1)) followed by flatten: [N,C,H,W] → [N,C]. */
export class GlobalAvgPool extends Module {
  forward(x: Var): Var {
    return ops.globalAvgPool(x);
  }
}

export class Identity extends Module {
  forward(x: Var): Var {
    return x.retain();
  }
}

/**
 * Runs children in order, releasing each intermediate once the next child has
 * consumed it; a BatchNorm2d directly followed by a ReLU runs as one fused op.
 */
export class Sequential extends Module {
  constructor(backend: Backend, mods: (Module | [string, Module])[]) {
    super(backend);
    mods.forEach((m, i) => {
      const [name, mod] = Array.isArray(m) ? m : [String(i), m];
      this.child(name, mod);
    });
  }

  forward(x: Var, ctx: Ctx = {}): Var {
    const kids = this.children().map(([, m]) => m);
    let h = x;
    for (let i = 0; i < kids.length; i++) {
      const m = kids[i];
      let y: Var;
      if (m instanceof BatchNorm2d && kids[i + 1] instanceof ReLU) {
        y = m.forward(h, ctx, true);
        i++;
      } else y = m.forward(h, ctx);
      if (h !== x) h.release();
      h = y;
    }
    return h === x ? x.retain() : h;
  }
}
