/** The results table: AUC per cell with CIs, and the paired differences. */
import { type Child, type Doc, type El, h } from "../dom.ts";
import { fmtAuc, fmtCi, fmtCiP, fmtDiff, fmtP, INIT_LABEL, PROTOCOL_LABEL } from "../format.ts";
import {
  formatFraction,
  INITS,
  MEAN_TASK,
  type PairedDifference,
  PROTOCOLS,
  type Results,
} from "../results.ts";
import { summaryKey, uniq } from "./common.ts";
import { BELOW_CHANCE, belowChance, belowChanceWarning } from "../headline.ts";
import type { ProbeCheck } from "../report_data.ts";

/**
 * Notes under a task's table: AUCs below chance (CI entirely under 0.5), and linear probes whose
 * validation AUC was flat across all C or whose chosen C lies at the grid's edge.
 */
export function tableNotes(doc: Doc, r: Results, task: string, probes: ProbeCheck[]): El[] {
  const out: El[] = [];
  const below = belowChance(r).filter((s) => s.task === task);
  if (below.length > 0) {
    out.push(h(
      doc,
      "ul",
      { class: "warnings below-chance" },
      ...below.map((s) => h(doc, "li", {}, belowChanceWarning(s))),
    ));
  }
  const odd = probes.filter((p) => p.flat > 0 || p.edge > 0);
  if (odd.length > 0) {
    const multi = uniq(probes.map((p) => p.backbone)).length > 1;
    out.push(h(
      doc,
      "p",
      { class: "note probe-note" },
      "Linear probes' penalty C: " + odd.map((p) =>
        `at ${formatFraction(p.fraction)}${multi ? ` (${p.backbone})` : ""}: the validation ` +
        `AUC was the same at every C in ${p.flat} of ${p.probes} probes; C at the grid's edge ` +
        `in ${p.edge} of ${p.probes}`
      ).join("; ") + ". A flat validation AUC gives the choice of C nothing to go on; a C at the " +
        "grid's edge may mean the best C lies beyond the grid.",
    ));
  }
  return out;
}

/** One labelled subset of the training pool (run.json `subsets`). */
export interface SubsetSize {
  fraction: number;
  draw: number;
  images: number;
  positives: number;
}

/** run.json's `subsets` (train/experiment.ts), or [] when the run did not record them. */
export function subsetSizes(meta: Record<string, unknown> | null | undefined): SubsetSize[] {
  const list = meta?.subsets;
  if (!Array.isArray(list)) return [];
  return list.filter((x): x is SubsetSize =>
    typeof x === "object" && x !== null && typeof x.fraction === "number" &&
    typeof x.images === "number" && typeof x.positives === "number"
  );
}

const range = (xs: number[]) => {
  const lo = Math.min(...xs), hi = Math.max(...xs);
  return lo === hi ? `${lo}` : `${lo}–${hi}`;
};

/** "12–14 labelled (3–4 positive)" over the draws of one fraction; null when not recorded. */
export function labelledText(subsets: SubsetSize[], fraction: number): string | null {
  const mine = subsets.filter((x) => Math.abs(x.fraction - fraction) <= 1e-12 * fraction);
  if (mine.length === 0) return null;
  return `${range(mine.map((x) => x.images))} labelled ` +
    `(${range(mine.map((x) => x.positives))} positive)`;
}

/** The spread of the AUC over the cell's models (draws × seeds): "sd 0.078 over 15 models". */
function spreadText(r: Results, k: {
  backbone: string;
  task: string;
  protocol: string;
  init: string;
  fraction: number;
}): string | null {
  const aucs = r.cells.filter((c) =>
    c.backbone === k.backbone && c.task === k.task && c.protocol === k.protocol &&
    c.init === k.init && c.fraction === k.fraction
  ).map((c) => c.auc);
  const n = aucs.length;
  if (n < 2) return null;
  const m = aucs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(aucs.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1));
  return `sd ${sd.toFixed(3)} over ${n} models`;
}

/** The paper-style table for one task: AUC [CI] per init, then each init − baseline. */
export function resultsTable(
  doc: Doc,
  r: Results,
  task: string,
  subsets: SubsetSize[] = [],
): El {
  const rows = r.summary.filter((s) => s.task === task);
  const byKey = new Map(rows.map((s) => [summaryKey(s), s]));
  const diffs = r.differences.filter((d) => d.task === task);
  const diffKey = (
    d: { backbone: string; protocol: string; fraction: number; init: string; baseline: string },
  ) => JSON.stringify([d.backbone, d.protocol, d.fraction, d.init, d.baseline]);
  const diffBy = new Map(diffs.map((d) => [diffKey(d), d]));
  const inits = INITS.filter((i) => rows.some((s) => s.init === i));
  const comps = r.settings.comparisons.filter(([a, b]) =>
    diffs.some((d) => d.init === a && d.baseline === b)
  );
  const backbones = uniq(rows.map((s) => s.backbone)).sort();
  const multiBackbone = backbones.length > 1;

  const level = Math.round(r.settings.level * 100);
  const head = h(
    doc,
    "tr",
    {},
    multiBackbone ? h(doc, "th", {}, "Backbone") : null,
    h(doc, "th", {}, "Protocol"),
    h(doc, "th", {}, "Labels"),
    ...inits.map((i) =>
      h(
        doc,
        "th",
        {},
        INIT_LABEL[i],
        h(doc, "span", { class: "ci" }, `AUC [${level}% CI, test images only]`),
      )
    ),
    ...comps.map(([a, b], k) =>
      h(
        doc,
        "th",
        { class: k === 0 ? "sep" : null },
        `${INIT_LABEL[a]} − ${INIT_LABEL[b]}`,
        h(
          doc,
          "span",
          { class: "ci" },
          `ΔAUC [${level}% CI${
            diffs.some((d) => d.init === a && d.baseline === b && d.seeds)
              ? ", test images and seeds"
              : ", test images"
          }]`,
        ),
      )
    ),
  );
  const body = h(doc, "tbody");
  for (const backbone of backbones) {
    const bRows = rows.filter((s) => s.backbone === backbone);
    const protocols = PROTOCOLS.filter((p) => bRows.some((s) => s.protocol === p));
    const nBackboneRows = protocols.reduce(
      (n, p) => n + uniq(bRows.filter((s) => s.protocol === p).map((s) => s.fraction)).length,
      0,
    );
    let firstOfBackbone = true;
    for (const protocol of protocols) {
      const fractions = uniq(bRows.filter((s) => s.protocol === protocol).map((s) => s.fraction))
        .sort((a, b) => a - b);
      fractions.forEach((fraction, k) => {
        const tr = h(doc, "tr");
        if (multiBackbone && firstOfBackbone) {
          tr.appendChild(h(doc, "th", { class: "group", rowspan: nBackboneRows }, backbone));
          firstOfBackbone = false;
        }
        if (k === 0) {
          tr.appendChild(
            h(doc, "th", { class: "group", rowspan: fractions.length }, PROTOCOL_LABEL[protocol]),
          );
        }
        const draws = Math.max(
          0,
          ...inits.map((i) =>
            byKey.get(summaryKey({ backbone, task, protocol, init: i, fraction }))?.n_draws ?? 0
          ),
        );
        tr.appendChild(
          h(
            doc,
            "td",
            { class: "frac" },
            formatFraction(fraction),
            draws > 1 ? h(doc, "span", { class: "draws" }, ` · ${draws} draws`) : null,
            labelledText(subsets, fraction)
              ? h(doc, "span", { class: "ci labelled" }, labelledText(subsets, fraction)!)
              : null,
          ),
        );
        for (const init of inits) {
          const s = byKey.get(summaryKey({ backbone, task, protocol, init, fraction }));
          tr.appendChild(
            s
              ? h(
                doc,
                "td",
                { title: s.n_draws > 1 ? `SD over draws ${s.auc_sd.toFixed(3)}` : null },
                fmtAuc(s.auc),
                h(doc, "span", { class: "ci" }, fmtCi(s.ci)),
                spreadText(r, s) ? h(doc, "span", { class: "ci spread" }, spreadText(r, s)!) : null,
                s.ci[1] < 0.5
                  ? h(doc, "span", { class: "ci chance", title: BELOW_CHANCE }, "below chance")
                  : null,
              )
              : h(doc, "td", {}, "—"),
          );
        }
        comps.forEach(([a, b], c) => {
          const d = diffBy.get(diffKey({ backbone, protocol, fraction, init: a, baseline: b }));
          tr.appendChild(diffCell(doc, d, c === 0, r.settings.replicates));
        });
        body.appendChild(tr);
      });
    }
  }
  const sizes = uniq(
    r.cells.filter((c) => task === MEAN_TASK || c.task === task).map((c) =>
      `${c.task === task ? "" : `${c.task}: `}${c.n_test} images, ${c.n_pos} positive` +
      (multiBackbone ? ` (${c.backbone})` : "")
    ),
  );
  return h(
    doc,
    "table",
    { class: "results" },
    h(
      doc,
      "caption",
      {},
      `Test set${sizes.length > 1 ? "s" : ""}: ${
        sizes.join("; ")
      }. Test AUC (mean over draws) with ${level}% bootstrap percentile CI ` +
        `(${r.settings.replicates} resamples of the test set). Differences are paired ` +
        `(same test images, same labeled subset per draw), averaged over draws; bold with a ` +
        `tint where the ${level}% CI excludes 0. p: the test behind that CI, the one the bold ` +
        `comes from: ` +
        (r.differences.every((d) => d.seeds)
          ? `the seed-level t below.`
          : `the paired bootstrap (two-sided, resolution 2/${r.settings.replicates}); DeLong's ` +
            `p is in the tooltip and differences.csv (p_delong).`) +
        seedsNote(r) +
        (subsets.length > 0
          ? " Labelled: training images with labels at that fraction (positives), min–max " +
            "over draws."
          : " Labelled-set sizes: not in this run's run.json (recorded since run.json " +
            "`subsets`; the run's log line `subsets:` has the image counts)."),
    ),
    h(doc, "thead", {}, head),
    body,
  );
}

/** The caption's sentence on pretraining seeds (empty with one seed). */
function seedsNote(r: Results): string {
  const withSeeds = r.differences.filter((d) => d.seeds);
  if (withSeeds.length === 0) return "";
  const Ks = withSeeds.map((d) => d.seeds!.n_seeds);
  const kMin = Math.min(...Ks), kMax = Math.max(...Ks);
  const K = kMin === kMax ? `${kMin}` : `${kMin}–${kMax}`;
  return ` Over ${K} pretraining seeds (each MoCo backbone paired with its own seed's baseline): ` +
    `a difference is the mean over seeds, its CI covers both the pretraining seed and the test ` +
    `images (Welch–Satterthwaite t from the spread between seeds net of test-image noise, and a ` +
    `paired bootstrap of the test set; bold and p from the same t), "k/K seeds" counts the ` +
    `seeds whose difference is above 0 out of that comparison's K, and the tooltip gives each ` +
    `seed's difference and the share of the variance from seeds (net of test-image noise).`;
}

function diffCell(
  doc: Doc,
  d: PairedDifference | undefined,
  first: boolean,
  replicates: number,
): El {
  const sep = first ? "sep" : "";
  if (!d) return h(doc, "td", { class: sep || null }, "—");
  const sig = d.ci[0] > 0 ? "sig-pos" : d.ci[1] < 0 ? "sig-neg" : "";
  const value: Child = sig ? h(doc, "strong", {}, fmtDiff(d.diff)) : fmtDiff(d.diff);
  const s = d.seeds;
  const tips = [
    s
      ? `per-seed differences: ${s.seed_diffs.map(fmtDiff).join(", ")}; ` +
        `${Math.round(100 * s.seed_share)}% of the variance from pretraining seeds, net of ` +
        `test-image noise (se ${s.se_seed.toFixed(3)} seeds, ${s.se_test.toFixed(3)} test ` +
        `images); test-images-only CI ${fmtCi(s.ci_test, fmtDiff)}`
      : null,
    d.n_draws > 1 ? `per-draw differences: ${d.draw_diffs.map(fmtDiff).join(", ")}` : null,
    !s && d.p_delong !== null && d.ci_delong
      ? `DeLong ${fmtCi(d.ci_delong, fmtDiff)}, ${fmtP(d.p_delong)}`
      : null,
  ].filter(Boolean);
  return h(
    doc,
    "td",
    { class: [sep, sig].filter(Boolean).join(" ") || null, title: tips.join("; ") || null },
    value,
    h(
      doc,
      "span",
      { class: "ci" },
      `${fmtCi(d.ci, fmtDiff)} · ${fmtCiP(d, replicates)}` +
        (s ? ` · ${s.seeds_positive}/${s.n_seeds} seeds` : ""),
    ),
  );
}
