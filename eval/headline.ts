/**
 * The report's headline: did MoCo initialization help at low label fractions? Computed from the
 * paired differences (MoCo − ImageNet, or − random when there is no ImageNet cell), never asserted.
 *
 * One verdict per protocol (linear probe; end to end), so that neither can carry the other: each
 * over its n low-fraction comparisons (one per fraction ≤ 1%, else its smallest fraction; on the
 * "mean" task when there are several tasks), with "above"/"below" counting the CIs that lie
 * entirely above/below 0:
 *  - "helped": above ≥ n/2, below = 0 and the mean ΔAUC > 0;
 *  - "hurt": below ≥ n/2, above = 0 and the mean ΔAUC < 0;
 *  - "mixed": some CIs above 0 and some below;
 *  - otherwise "no clear difference" (the text then says when one side's CIs were too few: with
 *    several comparisons at the 95% level, one CI excluding 0 is expected now and then by chance
 *    alone, and it says nothing when the other comparisons point the other way).
 * The headline's own `verdict` (the colour of the report's top-line box) is the protocols' common
 * verdict, or "differs by protocol" (neutral grey) when they disagree. The text then names the
 * comparisons at other fractions whose CI excludes 0, says in how many comparisons MoCo was ahead
 * (or behind) in every pretraining seed, and qualifies a comparison whose two inits both have an
 * AUC CI entirely below 0.5.
 */
import { fmtCi, fmtDiff, INIT_LABEL, PROTOCOL_LABEL } from "./format.ts";
import {
  formatFraction,
  type Init,
  MEAN_TASK,
  type PairedDifference,
  type Protocol,
  PROTOCOLS,
  type Results,
  type SummaryRow,
} from "./results.ts";

/** Label fractions at or below this count as "low" (MoCo-CXR's largest gains were there). */
export const LOW_FRACTION_MAX = 0.01;

export type Verdict =
  | "helped"
  | "hurt"
  | "mixed"
  | "no clear difference"
  | "not tested"
  | "differs by protocol";

/** The verdict of one protocol's comparisons. */
export interface ProtocolVerdict {
  protocol: Protocol;
  verdict: Verdict;
  /** The comparisons it is based on. */
  comparisons: PairedDifference[];
}

export interface Headline {
  verdict: Verdict;
  /** One or two sentences for the top of the report. */
  text: string;
  /** The comparisons the verdicts are based on (all protocols). */
  comparisons: PairedDifference[];
  /** The verdict per protocol (linear, then end to end), each by `verdictOf`. */
  protocols: ProtocolVerdict[];
}

/** The verdict's first sentence; `where` says at which label fractions ("at low label fractions"). */
const LEAD: Record<Verdict, (where: string) => string> = {
  "not tested": () => "",
  "helped": (w) => `MoCo pretraining helped ${w}.`,
  "hurt": (w) => `MoCo pretraining hurt ${w}.`,
  "mixed": (w) => `MoCo pretraining gave mixed results ${w}.`,
  "no clear difference": (w) => `MoCo pretraining made no clear difference ${w}.`,
  "differs by protocol": (w) => `MoCo pretraining's effect differed by protocol ${w}.`,
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

/** How the headline names a protocol ("Linear probe: …", "End to end: …"). */
const PROTOCOL_NAME: Record<Protocol, string> = { linear: "Linear probe", e2e: "End to end" };

/** Summary rows (per init, protocol, fraction) whose whole AUC CI lies below 0.5. */
export function belowChance(r: Results): SummaryRow[] {
  return r.summary.filter((s) => s.ci[1] < 0.5);
}

/** The warning for an AUC whose CI lies entirely below 0.5 (report and command line). */
export function belowChanceWarning(s: SummaryRow): string {
  return `${INIT_LABEL[s.init]}, ${PROTOCOL_LABEL[s.protocol]} at ${formatFraction(s.fraction)} ` +
    `(${s.backbone}, ${s.task}): AUC ${fmtCi(s.ci)} lies entirely below 0.5 — ${BELOW_CHANCE}`;
}

/** What an AUC CI entirely below 0.5 may mean. */
export const BELOW_CHANCE =
  "below chance: a label flip, a shift between splits, or too few labels to learn from";

/** "a", "a and b", "a, b and c". */
function andList(xs: string[]): string {
  return xs.length < 2 ? xs.join("") : `${xs.slice(0, -1).join(", ")} and ${xs[xs.length - 1]}`;
}

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
      protocols: [],
    };
  }
  const level = Math.round(r.settings.level * 100);
  // "Random init" already says initialization ("MoCo-CXR − Random init").
  const versus = `MoCo-CXR − ${INIT_LABEL[baseline]}`;
  const averaged = tasks.has(MEAN_TASK) ? " (AUC averaged over tasks)" : "";
  const protocols = PROTOCOLS.filter((p) => diffs.some((d) => d.protocol === p));
  const several = protocols.length > 1;
  const summaryOf = (d: PairedDifference, init: Init) =>
    r.summary.find((s) =>
      s.init === init && s.protocol === d.protocol && s.fraction === d.fraction &&
      s.backbone === d.backbone && s.task === d.task
    );
  const parts: ProtocolVerdict[] = [];
  const texts: string[] = [];
  let caveats = 0;
  for (const protocol of protocols) {
    const mine = diffs.filter((d) => d.protocol === protocol);
    let low = mine.filter((d) => d.fraction <= LOW_FRACTION_MAX);
    let scope = `at ≤ ${formatFraction(LOW_FRACTION_MAX)} of the labels`;
    let where = "at low label fractions";
    if (low.length === 0) {
      const fractions = [...new Set(mine.map((d) => d.fraction))];
      const smallest = Math.min(...fractions);
      low = mine.filter((d) => d.fraction === smallest);
      scope = `at the smallest label fraction in this run (${formatFraction(smallest)}; none ` +
        `is ≤ ${formatFraction(LOW_FRACTION_MAX)})`;
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
    parts.push({ protocol, verdict, comparisons: low });
    const body = n === 1
      ? `${versus} gave ΔAUC ${fmtDiff(low[0].diff)}${averaged}, ` +
        `${level}% CI ${fmtCi(low[0].ci, fmtDiff)}`
      : `${versus} was positive in ${ahead} of ${n} comparisons` +
        `${several ? ", " : " ("}mean ΔAUC ${fmtDiff(mean)}${averaged}${several ? "" : ")"}; ` +
        `its ${level}% CI lay above 0 in ${better} and below 0 in ${worse} of them`;
    const side = better > 0 && worse === 0
      ? { k: better, where: "above" }
      : worse > 0 && better === 0
      ? { k: worse, where: "below" }
      : null;
    const caveat = verdict === "no clear difference" && side
      ? `${side.k} of ${n} CIs ${side.where} 0 is not enough for a verdict`
      : "";
    if (caveat) caveats++;
    // Comparisons whose two inits are both below chance say little about pretraining.
    const chance = low.filter((d) =>
      [d.init, d.baseline].every((i) => (summaryOf(d, i)?.ci[1] ?? 1) < 0.5)
    );
    const chanceText = chance.length === 0 ? "" : `both MoCo-CXR and ${INIT_LABEL[baseline]} ` +
      `were below chance (AUC CI entirely under 0.5) at ${
        andList(chance.map((d) => formatFraction(d.fraction)))
      }, so ${chance.length === 1 ? "that comparison says" : "those comparisons say"} little ` +
      `about pretraining`;
    if (several) {
      const lead = LEAD[verdict](where).replace(/^MoCo pretraining /, "").replace(/\.$/, "");
      texts.push(
        `${PROTOCOL_NAME[protocol]}: MoCo pretraining ${lead} (${scope}, ${body}` +
          `${caveat ? `; ${caveat}` : ""}${chanceText ? `; ${chanceText}` : ""}).`,
      );
    } else {
      const Scope = scope[0].toUpperCase() + scope.slice(1);
      const Chance = chanceText ? ` ${chanceText[0].toUpperCase()}${chanceText.slice(1)}.` : "";
      texts.push(
        `${LEAD[verdict](where)} ${Scope}, ${body}.${caveat ? ` ${caveat}.` : ""}${Chance}`,
      );
    }
  }
  const rule = caveats > 0
    ? ` A verdict takes at least half of the CIs on one side, none on the other, and the mean ` +
      `ΔAUC on the same side.`
    : "";
  const low = parts.flatMap((p) => p.comparisons);
  const seeded = low.filter((d) => d.seeds);
  const Ks = seeded.map((d) => d.seeds!.n_seeds);
  const kMin = Math.min(...Ks), kMax = Math.max(...Ks);
  const allAhead = seeded.filter((d) => d.seeds!.seeds_positive === d.seeds!.n_seeds).length;
  const allBehind = seeded.filter((d) => d.seeds!.seeds_positive === 0).length;
  const seedsText = seeded.length === 0
    ? ""
    : ` Over ${kMin === kMax ? kMin : `${kMin}–${kMax}`} pretraining seeds, the CIs include the ` +
      `spread between seeds (on average ${
        Math.round(100 * seeded.reduce((s, d) => s + d.seeds!.seed_share, 0) / seeded.length)
      }% of the variance here, net of test-image noise); MoCo was ahead in every seed in ` +
      `${allAhead} of these ${seeded.length} comparisons and behind in every seed in ` +
      `${allBehind}.`;
  // Elsewhere: the comparisons outside the weighed fractions whose CI excludes 0.
  const outside = diffs.filter((d) => !low.includes(d) && (d.ci[0] > 0 || d.ci[1] < 0))
    .sort((a, b) =>
      a.fraction - b.fraction || PROTOCOLS.indexOf(a.protocol) - PROTOCOLS.indexOf(b.protocol)
    );
  const items = outside.map((d) =>
    `at ${formatFraction(d.fraction)} of the labels the ${
      d.protocol === "linear" ? "linear probe" : "end-to-end model"
    } was ${d.ci[0] > 0 ? "better" : "worse"} with MoCo-CXR than with ${INIT_LABEL[baseline]}: ` +
    `${fmtDiff(d.diff)} ${fmtCi(d.ci, fmtDiff)}`
  );
  const elsewhere = items.length === 0
    ? ""
    : items.length === 1
    ? ` ${items[0][0].toUpperCase()}${items[0].slice(1)}.`
    : ` Outside the fractions weighed above, a ${level}% CI excluded 0 ${items.join("; ")}.`;
  const verdicts = new Set(parts.map((p) => p.verdict));
  return {
    verdict: verdicts.size === 1 ? parts[0].verdict : "differs by protocol",
    text: texts.join(" ") + rule + elsewhere + seedsText,
    comparisons: low,
    protocols: parts,
  };
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
