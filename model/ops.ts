/**
 * The differentiable ops: each computes its value with the backend and hands
 * record() its backward rule. This file is the whole derivative table.
 * Backward closures only compute the gradients an input needs and return
 * fresh tensors (or the incoming gradient itself, for pass-through).
 */
import type { BTensor, ConvOpts, DType, PoolOpts } from "./backend.ts";
import { record, type Var } from "./autograd.ts";

const drop = (v: Var, t: BTensor | null) => {
  if (t) v.backend.dispose(t);
  return null;
};

export function conv2d(x: Var, w: Var, b: Var | null, o: ConvOpts): Var {
  const B = x.backend;
  const inputs = b ? [x, w, b] : [x, w];
  const xs = x.shape, ws = w.shape; // the values may be released (casts) when only shapes are read
  return record(
    B,
    B.conv2d(x.value, w.value, b?.value ?? null, o),
    inputs,
    (g, needs) => [
      needs[0] ? B.conv2dBackwardInput(g, w.value, xs, o) : null,
      needs[1] ? B.conv2dBackwardWeight(g, x.value, ws, o) : null,
      needs[2] ? B.conv2dBackwardBias(g) : null,
    ],
    { saved: [w.requiresGrad ? x : null, x.requiresGrad ? w : null] },
  );
}

/** x stored as `dtype` (mixed precision's boundary); the gradient goes back in x's dtype. */
export function cast(x: Var, dtype: DType): Var {
  const B = x.backend;
  const from = B.dtype(x.value);
  return record(B, B.cast(x.value, dtype), [x], (g) => [B.cast(g, from)]);
}

/** y = x·wᵀ + b (torch.nn.Linear). */
export function linear(x: Var, w: Var, b: Var | null): Var {
  const B = x.backend;
  return record(
    B,
    B.linear(x.value, w.value, b?.value ?? null),
    b ? [x, w, b] : [x, w],
    (g, needs) => {
      const r = B.linearBackward(g, x.value, w.value, b !== null && needs[2]);
      return [needs[0] ? r.dx : drop(x, r.dx), needs[1] ? r.dw : drop(x, r.dw), r.db];
    },
    { saved: [x, w] },
  );
}

export function relu(x: Var): Var {
  const B = x.backend;
  return record(B, B.relu(x.value), [x], (g, _n, out) => [B.reluBackward(g, out.value)], {
    saveOut: true,
  });
}

/**
 * relu(a + b) in one pass (a residual join); backward: the masked gradient to both, the second a
 * copy (a tensor the engine hands on is owned once), as add's pass-through after relu gave it.
 */
export function addRelu(a: Var, b: Var): Var {
  const B = a.backend;
  return record(B, B.addRelu(a.value, b.value), [a, b], (g, needs, out) => {
    const gm = B.reluBackward(g, out.value);
    if (needs[0] && needs[1]) return [gm, B.scale(gm, 1)];
    return [needs[0] ? gm : null, needs[0] ? null : gm];
  }, { saveOut: true });
}

export function add(a: Var, b: Var): Var {
  const B = a.backend;
  return record(B, B.add(a.value, b.value), [a, b], (g) => [g, g]);
}

export interface BatchNormArgs {
  training: boolean;
  momentum: number;
  eps: number;
  relu: boolean;
  groups: number;
}

/**
 * Batch norm (optionally fused with the following ReLU). Training mode uses
 * batch statistics and updates the running buffers in place; eval mode
 * normalises with the running statistics, and its backward is the per-channel
 * affine map's: dx = dy·γ/√(var+eps), dγ = Σ dy·x̂, dβ = Σ dy.
 */
export function batchNorm(
  x: Var,
  gamma: Var,
  beta: Var,
  runMean: BTensor,
  runVar: BTensor,
  o: BatchNormArgs,
): Var {
  const B = x.backend;
  const { relu: fuse, eps } = o;
  if (o.training) {
    const { y, mean, invstd } = B.batchNormTrain(
      x.value,
      gamma.value,
      beta.value,
      runMean,
      runVar,
      {
        momentum: o.momentum,
        eps,
        relu: fuse,
        groups: o.groups,
      },
    );
    return record(
      B,
      y,
      [x, gamma, beta],
      (g, needs, out) => {
        const r = B.batchNormBackward(
          g,
          x.value,
          fuse ? out.value : null,
          gamma.value,
          mean,
          invstd,
          {
            relu: fuse,
            groups: o.groups,
          },
        );
        return [
          needs[0] ? r.dx : drop(x, r.dx),
          needs[1] ? r.dgamma : drop(x, r.dgamma),
          needs[2] ? r.dbeta : drop(x, r.dbeta),
        ];
      },
      { saved: [x, gamma], saveOut: fuse, aux: [mean, invstd] },
    );
  }
  const y = B.batchNormEval(x.value, gamma.value, beta.value, runMean, runVar, { eps, relu: fuse });
  return record(
    B,
    y,
    [x, gamma, beta],
    (g, needs, out) => {
      const C = gamma.shape[0];
      const gm = fuse ? B.reluBackward(g, out.value) : g;
      // dx = gm·γ/√(var+eps) is exactly the eval BN of gm with zero mean and beta.
      const zeros = B.zeros([C]);
      const dx = needs[0] ? B.batchNormEval(gm, gamma.value, zeros, zeros, runVar, { eps }) : null;
      let dgamma: BTensor | null = null, dbeta: BTensor | null = null;
      if (needs[1] || needs[2]) {
        // Σ dy·x̂ and Σ dy with x̂ from the running statistics: the training
        // backward's dγ, dβ given mean = running mean, invstd = 1/√(var+eps).
        const ones = B.fromArray(new Float32Array(C).fill(1), [1, C]);
        const onesC = B.fromArray(new Float32Array(C).fill(1), [C]);
        const invstd = B.batchNormEval(ones, onesC, zeros, zeros, runVar, { eps });
        const r = B.batchNormBackward(gm, x.value, null, gamma.value, runMean, invstd, {});
        B.dispose(r.dx);
        for (const t of [ones, onesC, invstd]) B.dispose(t);
        dgamma = needs[1] ? r.dgamma : drop(x, r.dgamma);
        dbeta = needs[2] ? r.dbeta : drop(x, r.dbeta);
      }
      B.dispose(zeros);
      if (gm !== g) B.dispose(gm);
      return [dx, dgamma, dbeta];
    },
    { saved: [x, gamma], saveOut: fuse },
  );
}

export function maxPool2d(x: Var, o: PoolOpts): Var {
  const B = x.backend;
  return record(B, B.maxPool2d(x.value, o), [x], (g) => [B.maxPool2dBackward(g, x.value, o)], {
    saved: [x],
  });
}

export function avgPool2d(x: Var, o: PoolOpts): Var {
  const B = x.backend;
  const xs = x.shape;
  return record(B, B.avgPool2d(x.value, o), [x], (g) => [B.avgPool2dBackward(g, xs, o)]);
}

/** [N,C,H,W] → [N,C] (AdaptiveAvgPool2d(1) + flatten). */
export function globalAvgPool(x: Var): Var {
  const B = x.backend;
  const xs = x.shape;
  return record(B, B.globalAvgPool(x.value), [x], (g) => [B.globalAvgPoolBackward(g, xs)]);
}

/**
 * torch.cat(xs, 1); the backward slices the gradient back into the inputs' channel ranges. An
 * input that already holds a gradient (a DenseNet feature, in every later layer's concat) has its
 * range added into it in place, as the engine would add the slice, without the slice.
 */
export function concat(inputs: readonly Var[]): Var {
  const xs = [...inputs], B = xs[0].backend; // the record keeps xs: a copy of the caller's array
  const counts = xs.map((v) => v.shape[1]);
  return record(B, B.concatChannels(xs.map((v) => v.value)), xs, (g, needs) => {
    let start = 0;
    return counts.map((n, i) => {
      const v = xs[i], at = start;
      start += n;
      if (!needs[i]) return null;
      if (v.grad) {
        B.addChannelsInto(v.grad, g, at);
        return null;
      }
      return B.sliceChannels(g, at, n);
    });
  });
}

/**
 * A dense block's torch.cat(features, 1), per layer, read where it lies: the block writes its
 * input and then each new feature once into `store` (Backend.channelStore), and `concat(feats)`
 * is channels [0, C) of it as a Var (on the GPU a view that batch norm reads in place).
 *
 * The gradients are concat's, bit for bit, with one add a record instead of one a feature: the
 * records' gradients, widest first (the reverse pass meets them in that order), are summed into
 * one gradient store, each into its channel prefix. A record is the last of the block's records
 * to reach its newest feature, so once its gradient is in, that feature's range of the store is
 * its whole gradient, in the order concat's backward adds it: the record hands that slice on.
 * Calls must grow the features one at a time, as a dense block does (checked).
 */
export class StoredConcat {
  private grad: BTensor | null = null;
  private last: Var[] = [];
  /**
   * Features of the first call that was recorded: the reverse pass ends there, which frees the
   * gradient store (a block whose input needs no gradient records only from its first feature on).
   */
  private firstRecorded = 0;

  constructor(private readonly store: BTensor) {}

  /** concat(xs): the features written so far, the previous call's plus one. */
  concat(features: readonly Var[]): Var {
    const xs = [...features], B = xs[0].backend, prev = this.last; // the caller's array grows
    if (xs.length !== prev.length + 1 || prev.some((v, i) => v !== xs[i])) {
      throw new Error("StoredConcat: each call takes the previous call's features plus one");
    }
    this.last = xs;
    const counts = xs.map((v) => v.shape[1]);
    const C = counts.reduce((a, b) => a + b, 0), newest = C - counts[counts.length - 1];
    const out = record(B, B.channelPrefix(this.store, C), xs, (g, needs) => {
      if (!this.grad) this.grad = B.sliceChannels(g, 0, C);
      else B.addToChannels(this.grad, g, 0);
      const gs: (BTensor | null)[] = xs.map(() => null);
      if (needs[xs.length - 1]) gs[xs.length - 1] = B.sliceChannels(this.grad, newest, C - newest);
      if (xs.length === this.firstRecorded) { // every record of the block has run
        B.dispose(this.grad);
        this.grad = null;
      }
      return gs;
    });
    if (out.requiresGrad && this.firstRecorded === 0) this.firstRecorded = xs.length;
    return out;
  }
}

// ---- rows and losses -------------------------------------------------------
// A loss's forward also computes its gradient wrt its input (the kernels do both
// in one pass); the record keeps it and scales it by the upstream gradient, which
// is the engine's seed 1 for a loss that is the root (exact in floating point).

/** y = x / max(‖x‖₂, 1e-12) per row (F.normalize); backward (dy − y·⟨y, dy⟩)/‖x‖. */
export function l2Normalize(x: Var): Var {
  const B = x.backend;
  const { y, norm } = B.l2Normalize(x.value);
  return record(B, y, [x], (g, _n, out) => [B.l2NormalizeBackward(g, out.value, norm)], {
    saveOut: true,
    aux: [norm],
  });
}

/**
 * MoCo's logits [q·k₊, q·queueᵀ] / T (positive at column 0). k and the queue
 * are constants here (the key encoder is updated by EMA, not by gradient).
 */
export function mocoLogits(q: Var, k: BTensor, queue: BTensor, T: number): Var {
  const B = q.backend;
  return record(B, B.mocoLogits(q.value, k, queue, T), [q], (g) => [
    B.mocoLogitsBackward(g, k, queue, T),
  ]);
}

/** InfoNCE: mean softmax cross-entropy with label 0 per row; `correct` counts top-1 hits. */
export function infoNce(logits: Var): { loss: Var; correct: BTensor } {
  const B = logits.backend;
  const { loss, dlogits, correct } = B.infoNce(logits.value);
  return {
    loss: record(B, loss, [logits], (g) => [B.scaleBy(dlogits, g)], { aux: [dlogits] }),
    correct,
  };
}

/** Mean BCE-with-logits over the elements with mask > 0 (targets and mask are constants). */
export function bceWithLogits(logits: Var, targets: BTensor, mask: BTensor): Var {
  const B = logits.backend;
  const { loss, dlogits } = B.bceWithLogits(logits.value, targets, mask);
  return record(B, loss, [logits], (g) => [B.scaleBy(dlogits, g)], { aux: [dlogits] });
}
