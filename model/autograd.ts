/**
 * Tape-based reverse-mode autodiff over backend tensors.
 *
 * Every op (ops.ts) computes its value eagerly and, when gradients are enabled
 * and an input requires one, appends a record to the global tape: its inputs,
 * the Vars its backward needs (retained until the backward ran), auxiliary
 * tensors (BN batch statistics) and a backward closure. `backward(root)` walks
 * the tape once in reverse; because a record's consumers were all recorded
 * after it, once its closure ran its output gradient and saved tensors are
 * dead and are disposed on the spot, so activation memory is released as the
 * backward pass goes.
 *
 * Ownership: a Var made by an op owns its value and starts with one reference
 * (the forward code's); `release()` drops it, and the value is disposed when
 * the tape holds no more references either. Leaves (parameters, inputs) are
 * owned by whoever made them and are never disposed by the engine.
 */
import type { Backend, BTensor, Shape } from "./backend.ts";

/** A value in the autograd graph: its backend tensor, gradient and reference count. */
export class Var {
  /** The backend its value lives on. */
  readonly backend: Backend;
  /** Accumulated gradient (leaves, or non-leaves with `retainGrad`). */
  grad: BTensor | null = null;
  /** Whether backward computes a gradient for it. */
  requiresGrad: boolean;
  /** Leaves (parameters, inputs) are owned by their maker and never disposed by the engine. */
  readonly leaf: boolean;
  /** Keep this non-leaf's gradient after backward (Grad-CAM reads the feature map's). */
  retainGrad = false;
  private val: BTensor | null;
  private refs = 1;

  /** A Var over `value`; a leaf unless made by an op. */
  constructor(
    backend: Backend,
    value: BTensor,
    o: { requiresGrad?: boolean; leaf?: boolean } = {},
  ) {
    this.backend = backend;
    this.val = value;
    this.requiresGrad = o.requiresGrad ?? false;
    this.leaf = o.leaf ?? true;
  }

  /** The value (an error once released). */
  get value(): BTensor {
    if (!this.val) throw new Error("use of a released autograd value");
    return this.val;
  }
  /** Replaces the value (loading weights). */
  set value(t: BTensor) {
    this.val = t;
  }

  /** The value's shape. */
  get shape(): Shape {
    return this.value.shape;
  }

  /** Whether the value was released. */
  get released(): boolean {
    return this.val === null;
  }

  /** Adds a reference. */
  retain(): this {
    this.refs++;
    return this;
  }

  /** Drops one reference; an op output's value is disposed when none is left. */
  release(): void {
    if (this.leaf || this.val === null) return;
    if (--this.refs <= 0) {
      this.backend.dispose(this.val);
      this.val = null;
    }
  }

  /** Disposes the value (unless a leaf) and the gradient now, whatever the references. */
  dispose(): void {
    if (!this.leaf && this.val) this.backend.dispose(this.val);
    if (!this.leaf) this.val = null;
    this.zeroGrad();
  }

  /** Drops the gradient. */
  zeroGrad(): void {
    if (this.grad) this.backend.dispose(this.grad);
    this.grad = null;
  }

  /** The value's contents. */
  read(): Promise<Float32Array> {
    return this.backend.read(this.value);
  }
}

/** Computes input gradients from the output gradient; `needs[i]` says which inputs want one. */
export type BackwardFn = (g: BTensor, needs: boolean[], out: Var) => (BTensor | null)[];

interface Rec {
  out: Var;
  inputs: Var[];
  needs: boolean[];
  saved: Var[];
  aux: BTensor[];
  back: BackwardFn;
}

let gradEnabled = true;
let tape: Rec[] = [];

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording (inference, the momentum key encoder). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Wraps an op's result in a Var and records its backward when needed.
 * `saved`: Vars the closure reads (null entries are skipped); `saveOut`: the
 * closure reads the output's value; `aux`: tensors owned by the record,
 * disposed after its backward (or right away when nothing is recorded).
 * Public so higher layers can add ops (losses, MoCo logits) without editing this layer.
 */
export function record(
  backend: Backend,
  value: BTensor,
  inputs: Var[],
  back: BackwardFn,
  o: { saved?: (Var | null)[]; saveOut?: boolean; aux?: BTensor[] } = {},
): Var {
  const needs = inputs.map((v) => v.requiresGrad);
  const track = gradEnabled && needs.some(Boolean);
  const out = new Var(backend, value, { requiresGrad: track, leaf: false });
  const aux = o.aux ?? [];
  if (!track) {
    for (const t of aux) backend.dispose(t);
    return out;
  }
  const saved = (o.saved ?? []).filter((v): v is Var => v !== null);
  if (o.saveOut) saved.push(out);
  for (const v of saved) v.retain();
  tape.push({ out, inputs, needs, saved, aux, back });
  return out;
}

function accumulate(v: Var, g: BTensor): void {
  if (v.grad) {
    v.backend.addInto(v.grad, g);
    v.backend.dispose(g);
  } else v.grad = g;
}

function releaseRec(r: Rec): void {
  for (const v of r.saved) v.release();
  for (const t of r.aux) r.out.backend.dispose(t);
}

/** Drops the tape without a backward pass (after a forward whose gradient is not wanted). */
export function clearTape(): void {
  const t = tape;
  tape = [];
  for (const r of t) releaseRec(r);
}

/** Number of records on the tape (for tests). */
export function tapeLength(): number {
  return tape.length;
}

/**
 * Reverse pass from `root`, seeded with `seed` (ownership passes to the
 * engine), or with 1 when root has one element. Leaves that require a
 * gradient accumulate into `.grad`. Every record on the tape must be an
 * ancestor of the root (anything else is an error, and the tape is cleared).
 */
export function backward(root: Var, seed?: BTensor): void {
  const B = root.backend;
  if (!root.requiresGrad) {
    if (seed) B.dispose(seed);
    clearTape();
    throw new Error("backward: the root does not require a gradient (nothing was recorded)");
  }
  if (!seed) {
    if (root.value.shape.reduce((a, b) => a * b, 1) !== 1) {
      clearTape();
      throw new Error(`backward: a seed gradient is needed for a root of shape [${root.shape}]`);
    }
    seed = B.full(root.shape, 1); // on the device: a host upload would submit mid-step
  }
  // The order comes from the root: only its ancestors are walked (the tape is in
  // creation order, so its ancestors in reverse are a valid topological order).
  // A record that does not lead to the root is a forward whose gradient nobody
  // will take (run it under noGrad, or clearTape() first): an error, not a leak.
  const t = tape;
  tape = [];
  const producer = new Map<Var, number>(t.map((r, i) => [r.out, i]));
  const wanted = new Array<boolean>(t.length).fill(false);
  const stack = [root];
  while (stack.length) {
    const i = producer.get(stack.pop()!);
    if (i === undefined || wanted[i]) continue;
    wanted[i] = true;
    t[i].inputs.forEach((v, j) => t[i].needs[j] && stack.push(v));
  }
  const stray = wanted.filter((w) => !w).length;
  if (stray > 0) {
    B.dispose(seed);
    for (const r of t) releaseRec(r);
    throw new Error(
      `backward: ${stray} recorded op(s) do not lead to the root; run such forwards under ` +
        `noGrad() or call clearTape() before this backward`,
    );
  }
  accumulate(root, seed);
  for (let i = t.length - 1; i >= 0; i--) {
    const r = t[i];
    const g = r.out.grad;
    if (g) {
      const gs = r.back(g, r.needs, r.out);
      const keep = r.out.leaf || r.out.retainGrad;
      let gFree = !keep; // g may be handed on once (pass-through gradients of add)
      gs.forEach((gi, j) => {
        if (!gi) return;
        if (!r.needs[j]) {
          if (gi !== g) B.dispose(gi);
          return;
        }
        if (gi === g) {
          if (gFree) gFree = false;
          else gi = B.scale(g, 1);
        }
        accumulate(r.inputs[j], gi);
      });
      if (!keep) {
        if (gFree) B.dispose(g);
        r.out.grad = null;
      }
    }
    releaseRec(r);
  }
}
