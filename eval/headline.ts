/**
 * The report's headline: did MoCo initialization help at low label fractions? Computed from the
 * paired differences (MoCo − ImageNet, or − random when there is no ImageNet cell), never asserted.
 *
 * The verdict over the n low-fraction comparisons (one per protocol and fraction ≤ 1%; on the
 * "mean" task when there are several tasks), with "above"/"below" counting the CIs that lie
 * entirely above/below 0:
 *  - "helped": above ≥ n/2, below = 0 and the mean ΔAUC > 0;
 *  - "hurt": below ≥ n/2, above = 0 and the mean ΔAUC < 0;
 *  - "mixed": some CIs above 0 and some below;
 *  - otherwise "no clear difference" (the text then says when one side's CIs were too few: with
 *    several comparisons at the 95% level, one CI excluding 0 is expected now and then by chance
 *    alone, and it says nothing when the other comparisons point the other way).
 */
import { fmtCi, fmtDiff, INIT_LABEL } from "./format.ts";
import { formatFraction, MEAN_TASK, type PairedDifference, type Results } from "./results.ts";

/** Label fractions at or below this count as "low" (MoCo-CXR's largest gains were there). */
export const LOW_FRACTION_MAX = 0.01;

export type Verdict = "helped" | "hurt" | "mixed" | "no clear difference" | "not tested";

export interface Headline {
  verdict: Verdict;
  /** One or two sentences for the top of the report. */
  text: string;
  /** The comparisons the verdict is based on. */
  comparisons: PairedDifference[];
}

/** The verdict's first sentence; `where` says at which label fractions ("at low label fractions"). */
const LEAD: Record<Verdict, (where: string) => string> = {
  "not tested": () => "",
  "helped": (w) => `MoCo pretraining helped ${w}.`,
  "hurt": (w) => `MoCo pretraining hurt ${w}.`,
  "mixed": (w) => `MoCo pretraining gave mixed results ${w}.`,
  "no clear difference": (w) => `MoCo pretraining made no clear difference ${w}.`,
};

/**
 * What a run without a MoCo − baseline comparison should run to get one: a baseline beside its
 * MoCo cells, or MoCo cells beside its baseline.
 */
export const NOT_TESTED_HOW = {
  baseline: "To get one, run `deno task finetune --init random` with the same flags and --out, " +
    "or `deno task experiment --moco <run>/backbone.safetensors --pretrain-seeds 1` (the " +
    "pretraining run's backbone), which runs the random cells beside the MoCo ones.",
  moco: "To get one, run `deno task finetune --init moco --weights <pretraining run>` with the " +
    "same flags and --out, or `deno task experiment` (which pretrains) with --inits random,moco.",
};

/** Computes the headline from a Results object. */
export function computeHeadline(r: Results): Headline {
  const moco = r.differences.filter((d) => d.init === "moco");
  const baseline = moco.some((d) => d.baseline === "imagenet") ? "imagenet" : "random";
  let diffs = moco.filter((d) => d.baseline === baseline);
  const tasks = new Set(diffs.map((d) => d.task));
  if (tasks.has(MEAN_TASK)) diffs = diffs.filter((d) => d.task === MEAN_TASK);
  if (diffs.length === 0) {
    const hasMoco = r.cells.some((c) => c.init === "moco");
    const hasBaseline = r.cells.some((c) => c.init !== "moco");
    const how = hasMoco && !hasBaseline
      ? ` ${NOT_TESTED_HOW.baseline}`
      : !hasMoco && hasBaseline
      ? ` ${NOT_TESTED_HOW.moco}`
      : "";
    return {
      verdict: "not tested",
      text: "This run has no MoCo-initialized cells paired with a baseline, so it cannot say " +
        `whether MoCo pretraining helped.${how}`,
      comparisons: [],
    };
  }
  let low = diffs.filter((d) => d.fraction <= LOW_FRACTION_MAX);
  let scope = `at ≤ ${formatFraction(LOW_FRACTION_MAX)} of the labels`;
  let where = "at low label fractions";
  if (low.length === 0) {
    const fractions = [...new Set(diffs.map((d) => d.fraction))];
    const smallest = Math.min(...fractions);
    low = diffs.filter((d) => d.fraction === smallest);
    scope = `at the smallest label fraction in this run (${formatFraction(smallest)}; none is ` +
      `≤ ${formatFraction(LOW_FRACTION_MAX)})`;
    where = fractions.length === 1
      ? `at the label fraction run (${formatFraction(smallest)})`
      : `at the smallest label fraction run (${formatFraction(smallest)})`;
  }
  const n = low.length;
  const better = low.filter((d) => d.ci[0] > 0).length;
  const worse = low.filter((d) => d.ci[1] < 0).length;
  const ahead = low.filter((d) => d.diff > 0).length;
  const mean = low.reduce((s, d) => s + d.diff, 0) / n;
  const verdict = verdictOf(n, better, worse, mean);
  const lead = LEAD[verdict](where);
  const level = Math.round(r.settings.level * 100);
  const Scope = scope[0].toUpperCase() + scope.slice(1);
  // "Random init" already says initialization ("MoCo-CXR − Random init").
  const versus = `MoCo-CXR − ${INIT_LABEL[baseline]}`;
  const averaged = tasks.has(MEAN_TASK) ? " (AUC averaged over tasks)" : "";
  const text = n === 1
    ? `${lead} ${Scope}, ${versus} gave ΔAUC ${fmtDiff(low[0].diff)}${averaged}, ` +
      `${level}% CI ${fmtCi(low[0].ci, fmtDiff)}.`
    : `${lead} ${Scope}, ${versus} was positive in ${ahead} of ${n} comparisons ` +
      `(mean ΔAUC ${fmtDiff(mean)}${averaged}); its ${level}% CI lay above 0 in ${better} ` +
      `and below 0 in ${worse} of them.`;
  const seeded = low.filter((d) => d.seeds);
  const Ks = seeded.map((d) => d.seeds!.n_seeds);
  const kMin = Math.min(...Ks), kMax = Math.max(...Ks);
  const seedsText = seeded.length === 0
    ? ""
    : ` Over ${kMin === kMax ? kMin : `${kMin}–${kMax}`} pretraining seeds, the CIs include the ` +
      `spread between seeds (on average ${
        Math.round(100 * seeded.reduce((s, d) => s + d.seeds!.seed_share, 0) / seeded.length)
      }% of the variance here, net of test-image noise); the sign held in every seed in ${
        seeded.filter((d) =>
          d.seeds!.seeds_positive === 0 || d.seeds!.seeds_positive === d.seeds!.n_seeds
        ).length
      } of these ${seeded.length} comparisons.`;
  const side = better > 0 && worse === 0
    ? { k: better, where: "above" }
    : worse > 0 && better === 0
    ? { k: worse, where: "below" }
    : null;
  const caveat = verdict === "no clear difference" && side
    ? ` ${side.k} of ${n} CIs ${side.where} 0 is not enough for a verdict: it takes at least ` +
      `half of them on one side, none on the other, and the mean ΔAUC on the same side.`
    : "";
  return { verdict, text: text + caveat + seedsText, comparisons: low };
}

/**
 * The verdict rule (see the file header): n comparisons, `above`/`below` of them with a CI
 * entirely above/below 0, `mean` their mean ΔAUC.
 */
export function verdictOf(n: number, above: number, below: number, mean: number): Verdict {
  if (n === 0) return "not tested";
  if (above > 0 && below > 0) return "mixed";
  if (below === 0 && 2 * above >= n && mean > 0) return "helped";
  if (above === 0 && 2 * below >= n && mean < 0) return "hurt";
  return "no clear difference";
}
