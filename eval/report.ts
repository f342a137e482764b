/**
 * The experiment report: one self-contained report.html (inline CSS, inline SVG plots, PNG
 * data URIs; no scripts, fonts or network) built with linkedom from a Results object plus
 * optional ROC/training panels, Grad-CAM examples and run metadata.
 */
import type { ColormapName } from "./colormap.ts";
import { type El, h, newDocument } from "./dom.ts";
import { computeHeadline } from "./headline.ts";
import type { Panel, ProbeCheck } from "./report_data.ts";
import { MEAN_TASK, type Results } from "./results.ts";
import type { GradCamItem } from "./run_files.ts";
import { CSS } from "./report/style.ts";
import { tasksOf, taskTitle, uniq } from "./report/common.ts";
import { resultsTable, subsetSizes, tableNotes } from "./report/table.ts";
import { aucFractionPlots, diffFractionPlot, panelGroups } from "./report/plots.ts";
import { gradcamSection, noGradcamReason } from "./report/gradcam.ts";
import { howToRead, metadataSection } from "./report/prose.ts";
export { noGradcamReason } from "./report/gradcam.ts";

export interface ReportInput {
  results: Results;
  title?: string;
  /** Shown under the title, e.g. the run folder name. */
  runName?: string;
  /** ROC small multiples (see report_data.ts rocPanels). */
  roc?: Panel[];
  /** Training and pretraining curves (trainingPanels, pretrainPanels). */
  training?: Panel[];
  gradcam?: GradCamItem[];
  gradcamColormap?: ColormapName;
  /** run.json contents: shown as key facts plus the full JSON. */
  metadata?: Record<string, unknown> | null;
  /** Linear probes' penalty choices per fraction (report_data.ts probeChecks). */
  probes?: ProbeCheck[];
  /** The last step of each MoCo pretraining metrics file (shown in the metadata). */
  pretrainSteps?: number[];
  /** The code version evaluating the run (run_files.ts codeVersion). */
  codeVersion?: string;
  /** Names of the companion files written next to the report. */
  files?: string[];
  /** ISO timestamp; defaults to now. */
  generatedAt?: string;
}

/** Builds the complete report.html text. */
export function buildReport(input: ReportInput): string {
  const r = input.results;
  const doc = newDocument();
  const title = input.title ?? "MoCo-CXR reproduction: evaluation report";
  doc.head.appendChild(h(doc, "meta", { name: "viewport", content: "width=device-width" }));
  doc.head.appendChild(h(doc, "title", {}, input.runName ? `${title} — ${input.runName}` : title));
  doc.head.appendChild(h(doc, "style", {}, CSS));
  const main = h(doc, "main");
  doc.body.appendChild(main);
  const add = (...els: (El | null)[]) => els.forEach((e) => e && main.appendChild(e));

  const tasks = tasksOf(r);
  const backbones = uniq(r.summary.map((s) => s.backbone)).sort();
  const generated = input.generatedAt ?? new Date().toISOString();
  add(h(doc, "h1", {}, title));
  add(h(
    doc,
    "p",
    { class: "sub" },
    [
      input.runName ? `Run ${input.runName}` : null,
      `${r.cells.length} evaluated models`,
      `backbone${backbones.length > 1 ? "s" : ""} ${backbones.join(", ")}`,
      `task${tasks.length > 1 ? "s" : ""} ${tasks.filter((t) => t !== MEAN_TASK).join(", ")}`,
      `generated ${generated.replace("T", " ").slice(0, 16)} UTC`,
    ].filter(Boolean).join(" · "),
  ));
  const hl = computeHeadline(r);
  // The box's colour: the protocols' common verdict; neutral grey when they disagree.
  add(h(doc, "p", { class: `headline ${hl.verdict.replaceAll(" ", "-")}` }, hl.text));
  add(howToRead(doc, r));

  add(h(doc, "h2", {}, "Results"));
  for (const task of tasks) {
    if (tasks.length > 1) add(h(doc, "h3", {}, taskTitle(task)));
    add(resultsTable(doc, r, task, subsetSizes(input.metadata)));
    add(...tableNotes(doc, r, task, input.probes ?? []));
  }

  add(h(doc, "h2", {}, "AUC versus label fraction"));
  for (const task of tasks) {
    for (const backbone of backbones) {
      if (!r.summary.some((s) => s.task === task && s.backbone === backbone)) continue;
      if (tasks.length > 1 || backbones.length > 1) {
        add(h(doc, "h3", {}, `${taskTitle(task)} · ${backbone}`));
      }
      const div = h(doc, "div", { class: "plots" });
      for (const p of aucFractionPlots(doc, r, task, backbone)) div.appendChild(p);
      const d = diffFractionPlot(doc, r, task, backbone);
      if (d) div.appendChild(d);
      add(div);
    }
  }

  if (input.roc && input.roc.length > 0) {
    add(h(doc, "h2", {}, "ROC curves"));
    add(h(
      doc,
      "p",
      { class: "sub" },
      "One panel per label fraction; legend values are the AUCs of the plotted draw (the " +
        "first, of pretraining seed 0 when there are several).",
    ));
    add(...panelGroups(doc, input.roc, "plot plot-roc", [258, 280], true));
  }
  if (input.training && input.training.length > 0) {
    add(h(doc, "h2", {}, "Training curves"));
    add(...panelGroups(doc, input.training, "plot plot-training", [258, 220], false));
  }
  add(h(doc, "h2", {}, "Grad-CAM examples"));
  if (input.gradcam && input.gradcam.length > 0) {
    add(...gradcamSection(doc, input.gradcam, input.gradcamColormap ?? "inferno"));
  } else add(h(doc, "p", { class: "sub" }, noGradcamReason(r)));
  add(h(doc, "h2", {}, "Run metadata"));
  add(...metadataSection(doc, r, input.metadata, {
    pretrainSteps: input.pretrainSteps,
    codeVersionNow: input.codeVersion,
  }));
  add(h(
    doc,
    "footer",
    {},
    "Self-contained report (no scripts or network). ",
    input.files && input.files.length > 0 ? `Data files: ${input.files.join(", ")}.` : null,
  ));
  return doc.toString();
}
