/** The run's metadata and the "how to read" prose. */
import { type Child, type Doc, type El, h } from "../dom.ts";
import { INIT_LABEL } from "../format.ts";
import { LOW_FRACTION_MAX } from "../headline.ts";
import { formatFraction, type Results } from "../results.ts";
import { uniq } from "./common.ts";

export function metadataSection(
  doc: Doc,
  r: Results,
  meta: Record<string, unknown> | null | undefined,
) {
  const out: El[] = [];
  const dl = h(doc, "dl", { class: "meta" });
  const add = (k: string, v: unknown) => {
    dl.appendChild(h(doc, "dt", {}, k));
    dl.appendChild(h(doc, "dd", {}, typeof v === "string" ? v : JSON.stringify(v)));
  };
  if (meta) {
    for (
      const k of [
        "name",
        "created",
        "versions",
        "adapter",
        "seeds",
        "seed",
        "device",
        "preset",
        "pretrain_seeds",
        "e2e_protocol",
      ]
    ) {
      if (meta[k] !== undefined) add(k, meta[k]);
    }
  }
  // A given MoCo backbone's pretraining: its own run's config.json, or none known (never this
  // run's defaults, which did not make it).
  const mp = meta?.moco_pretraining as
    | { backbone?: string; from?: string | null; config?: unknown; note?: string }
    | undefined;
  if (mp && typeof mp === "object") {
    add(
      "MoCo pretraining",
      mp.from && mp.config
        ? `of the given backbone ${mp.backbone}: its run's config, from ${mp.from} ` +
          `(moco_pretraining.config below)`
        : `of the given backbone ${mp.backbone}: not recorded (${
          mp.note ?? "no config.json beside it"
        })`,
    );
  }
  const st = r.settings;
  add(
    "evaluation",
    `${st.ci_method}, ${st.replicates} resamples, seed ${st.seed}, level ${st.level}`,
  );
  // Only the comparisons this run's cells allow (both inits present) are listed as made.
  const made = st.comparisons.filter(([a, b]) =>
    r.differences.some((d) => d.init === a && d.baseline === b)
  );
  const notMade = st.comparisons.filter((c) => !made.includes(c));
  add(
    "comparisons",
    (made.map(([a, b]) => `${INIT_LABEL[a]} − ${INIT_LABEL[b]}`).join("; ") || "none") +
      (notMade.length
        ? ` (not made, no cells of ${
          uniq(notMade.flatMap((c) => c.filter((i) => !r.cells.some((x) => x.init === i))))
            .map((i) => INIT_LABEL[i]).join(" or ") || "matching draws"
        }: ${notMade.map(([a, b]) => `${INIT_LABEL[a]} − ${INIT_LABEL[b]}`).join("; ")})`
        : ""),
  );
  add("cells", `${r.cells.length} (${uniq(r.cells.map((c) => c.task)).length} task(s))`);
  out.push(dl);
  if (meta) {
    out.push(h(
      doc,
      "details",
      { open: true },
      h(doc, "summary", {}, "Full run metadata (run.json)"),
      h(doc, "pre", {}, JSON.stringify(meta, null, 2)),
    ));
  } else {
    out.push(h(doc, "p", { class: "sub" }, "No run.json in this run folder."));
  }
  if (r.warnings.length > 0) {
    out.push(h(doc, "h3", {}, "Warnings"));
    out.push(h(doc, "ul", { class: "warnings" }, ...r.warnings.map((w) => h(doc, "li", {}, w))));
  }
  return out;
}

export function howToRead(doc: Doc, r: Results): El {
  const level = Math.round(r.settings.level * 100);
  const li = (...c: Child[]) => h(doc, "li", {}, ...c);
  return h(
    doc,
    "div",
    { class: "howto" },
    h(doc, "h2", {}, "How to read this report"),
    h(
      doc,
      "ul",
      {},
      li(
        h(doc, "strong", {}, "Cells. "),
        "Each model starts from one initialization — random weights, ImageNet weights, or " +
          "MoCo-CXR (momentum-contrast pretraining on chest X-rays) — and is then trained " +
          "either as a linear probe (frozen backbone; an L2-regularised logistic regression on " +
          "its features, the penalty C chosen on the validation split: results.csv probe_C) " +
          "or end to end, using a fraction of the training labels. Small fractions are " +
          "repeated with several random label subsets (draws).",
      ),
      li(
        h(doc, "strong", {}, "AUC. "),
        `Area under the ROC curve on the held-out test set: 0.5 is chance, 1.0 is perfect. ` +
          `Brackets give the ${level}% bootstrap confidence interval, which reflects how much ` +
          `the AUC could move with a different test sample of the same size.`,
      ),
      li(
        h(doc, "strong", {}, "Differences. "),
        "ΔAUC compares two initializations on the same test images and the same labeled " +
          "subsets, so shared noise cancels. A bold, tinted ΔAUC has a CI that excludes 0 " +
          "(green: first init better; red: worse); the p next to it comes from the same test. " +
          "With one pretraining seed the CIs cover test-set sampling only; with several " +
          "(--pretrain-seeds) they cover the pretraining seed too. The spread between draws is " +
          "in the tooltips and in differences.csv (draw_sd); between seeds, in seed_diffs and " +
          "seed_share (the seeds' share of the variance, net of test-image noise).",
      ),
      li(
        h(doc, "strong", {}, "Plots. "),
        "AUC versus label fraction uses a log x axis, one line per initialization with a " +
          "shaded CI band; hover a point for its numbers. ROC curves show the first draw " +
          "(of pretraining seed 0).",
      ),
      li(
        h(doc, "strong", {}, "Verdict. "),
        `The line at the top weighs the comparisons at ≤ ${formatFraction(LOW_FRACTION_MAX)} ` +
          "of the labels (else at the run's smallest fraction): MoCo “helped” when " +
          "at least half of their CIs lie above 0, none below, and the mean ΔAUC is positive; " +
          "“hurt” likewise below 0; “mixed” when CIs lie on both sides; otherwise “no clear " +
          "difference” — a lone CI excluding 0 among several comparisons is not enough.",
      ),
    ),
  );
}
