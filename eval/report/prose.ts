/** The run's metadata and the "how to read" prose. */
import { type Child, type Doc, type El, h } from "../dom.ts";
import { INIT_LABEL } from "../format.ts";
import { LOW_FRACTION_MAX } from "../headline.ts";
import { formatFraction, type Results } from "../results.ts";
import { uniq } from "./common.ts";

/** Whether a dataset root is the built-in synthetic set (cli/open_data.ts DEFAULT_SYNTH_ROOT). */
export function isSyntheticRoot(root: unknown): boolean {
  return typeof root === "string" &&
    /(^|\/)synthetic\/(chexpert|shenzhen)-n\d+[^/]*(\/|$)/.test(root);
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? v as Obj : undefined;
const num = (v: unknown): number | undefined => typeof v === "number" ? v : undefined;

/**
 * The key facts of run.json: data (and whether it is the built-in synthetic set), start time,
 * image size, pretraining, splits, command and code version; "not recorded" where an older run
 * lacks them.
 */
export function keyFacts(
  meta: Obj,
  extra: { pretrainSteps?: number[]; codeVersionNow?: string } = {},
): [string, string][] {
  const out: [string, string][] = [];
  const add = (k: string, v: unknown) => {
    if (v !== undefined && v !== null) out.push([k, typeof v === "string" ? v : JSON.stringify(v)]);
  };
  const cfg = obj(meta.config) ?? {};
  const pre = obj(cfg.pretrain);
  const ds = obj(cfg.dataset) ?? obj(pre?.dataset);
  const synthetic = isSyntheticRoot(ds?.root);
  const dataText = typeof meta.data === "string"
    ? meta.data
    : ds
    ? `${ds.kind ?? "?"}, ${ds.records ?? "?"} images`
    : undefined;
  if (dataText || ds) {
    add(
      "data",
      `${dataText ?? ""}${
        synthetic ? " — SYNTHETIC (the built-in generated set, not radiographs)" : ""
      }${ds?.root ? `; root ${ds.root}` : ""}`,
    );
  }
  add("started", meta.started ?? meta.created ?? "not recorded");
  if (num(pre?.imageSize)) add("image size", `${pre!.imageSize} px`);
  const moco = obj(pre?.moco);
  const K = num(meta.pretrain_seeds) ?? num(cfg.pretrainSeeds) ?? 1;
  if (pre && num(pre.epochs) !== undefined) {
    const steps = extra.pretrainSteps ?? [];
    add(
      "MoCo pretraining",
      `${pre.epochs} epoch(s)` +
        (steps.length ? `, ${uniq(steps).join("/")} steps` : "") +
        (num(pre.batchSize) ? `, batch ${pre.batchSize}` : "") +
        (moco?.backbone ? `, ${moco.backbone}` : "") +
        (num(moco?.queueSize) ? `, queue ${moco!.queueSize} negatives` : "") +
        (num(moco?.temperature) ? `, temperature ${moco!.temperature}` : ""),
    );
    if (num(pre.seed) !== undefined) {
      const seeds = Array.from({ length: K }, (_, k) => (pre.seed as number) + 1000 * k);
      add("pretraining seeds", `${seeds.join(", ")} (seed + 1000·k, k = 0…${K - 1})`);
    }
  }
  add("preset", meta.preset);
  const splits = obj(meta.splits);
  const part = (k: string, label: string) => {
    const x = obj(splits?.[k]);
    return x ? `${label} ${x.images} (${x.positives} positive)` : null;
  };
  const ov = obj(cfg.splitsOverlap);
  add(
    "splits",
    (splits
      ? [part("train_pool", "train pool"), part("validation", "validation"), part("test", "test")]
        .filter(Boolean).join(" · ")
      : "sizes not recorded in run.json (runs before this field)") +
      (ov
        ? `; patient-disjoint after leaving out ${ov.dropped} image(s) and moving ${ov.moved}, ` +
          `of ${ov.patients} patient(s) in two splits`
        : cfg.splitsOverlap === undefined && splits
        ? "; the dataset's splits were already patient-disjoint"
        : ""),
  );
  const cmd = obj(meta.command);
  add(
    "command",
    cmd && Array.isArray(cmd.args)
      ? `deno task ${cmd.task ?? "?"} ${(cmd.args as unknown[]).join(" ")}`.trim()
      : "not recorded",
  );
  add("code version", meta.code_version ?? "not recorded");
  if (extra.codeVersionNow) add("code version (this evaluation)", extra.codeVersionNow);
  return out;
}

export function metadataSection(
  doc: Doc,
  r: Results,
  meta: Record<string, unknown> | null | undefined,
  extra: { pretrainSteps?: number[]; codeVersionNow?: string } = {},
) {
  const out: El[] = [];
  const dl = h(doc, "dl", { class: "meta" });
  const add = (k: string, v: unknown) => {
    dl.appendChild(h(doc, "dt", {}, k));
    dl.appendChild(h(doc, "dd", {}, typeof v === "string" ? v : JSON.stringify(v)));
  };
  if (meta) {
    for (const [k, v] of keyFacts(meta, extra)) add(k, v);
    for (
      const k of [
        "name",
        "versions",
        "adapter",
        "seeds",
        "seed",
        "device",
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
          `Brackets give the ${level}% bootstrap confidence interval of the test images only: ` +
          `how much the AUC could move with a different test sample of the same size, not with ` +
          `other label draws or pretraining seeds (their spread is the “sd … over n models” ` +
          `under it). “Labelled” gives the labelled training images (and positives) per ` +
          `fraction, min–max over draws.`,
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
        `The line at the top gives one verdict per protocol (linear probe; end to end), each ` +
          `weighing that protocol's comparisons at ≤ ${formatFraction(LOW_FRACTION_MAX)} ` +
          "of the labels (else at its smallest fraction): MoCo “helped” when " +
          "at least half of their CIs lie above 0, none below, and the mean ΔAUC is positive; " +
          "“hurt” likewise below 0; “mixed” when CIs lie on both sides; otherwise “no clear " +
          "difference” — a lone CI excluding 0 among several comparisons is not enough. The " +
          "box is green or red when the protocols agree on “helped” or “hurt”, amber for an " +
          "agreed “mixed” or “no clear difference”, and grey when the protocols disagree. It " +
          "then names any comparison at other fractions whose CI excludes 0.",
      ),
    ),
  );
}
