/** The Grad-CAM examples (or why there are none). */
import type { ColormapName } from "../colormap.ts";
import { type Doc, type El, h } from "../dom.ts";
import {
  colorbarRaster,
  grayRaster,
  heatRaster,
  normalizeMinMax,
  overlayRaster,
  resizeBilinear,
} from "../heatmap.ts";
import { pngDataUri } from "../png.ts";
import type { Results } from "../results.ts";
import type { GradCamItem } from "../run_files.ts";

/** Why a report has no Grad-CAM examples: they come from end-to-end cells only. */
export function noGradcamReason(r: Results): string {
  return r.cells.some((c) => c.protocol === "e2e")
    ? "None in this run folder's gradcam/: the experiment writes them for the end-to-end cells " +
      "at the largest label fraction (first draw) when the test set has positives, unless run " +
      "with --gradcam 0."
    : "None: Grad-CAM examples come from end-to-end cells (a frozen linear probe has nothing to " +
      "explain beyond its backbone), and this run has linear-protocol cells only.";
}

/** The Grad-CAM grid: image, heatmap and overlay per example, with a colour bar. */
export function gradcamSection(doc: Doc, items: GradCamItem[], cmap: ColormapName): El[] {
  const bar = h(
    doc,
    "div",
    { class: "colorbar" },
    "low",
    h(doc, "img", { src: pngDataUri(colorbarRaster(cmap)), alt: `${cmap} colormap` }),
    `high Grad-CAM activation (${cmap}; each map min–max scaled)`,
  );
  const grid = h(doc, "div", { class: "cams" });
  for (const it of items) {
    const heat = normalizeMinMax(
      it.heatmapWidth === it.width && it.heatmapHeight === it.height
        ? it.heatmap
        : resizeBilinear(it.heatmap, it.heatmapWidth, it.heatmapHeight, it.width, it.height),
    );
    const img = (label: string, uri: string) =>
      h(doc, "div", {}, h(doc, "img", { src: uri, alt: `${it.title}: ${label}` }), label);
    const details = [
      it.label !== undefined ? `label ${it.label}` : null,
      it.score !== undefined ? `score ${it.score.toFixed(3)}` : null,
    ].filter(Boolean).join(" · ");
    grid.appendChild(h(
      doc,
      "figure",
      { class: "cam" },
      h(
        doc,
        "div",
        { class: "imgs" },
        img("image", pngDataUri(grayRaster(it.image, it.width, it.height))),
        img("Grad-CAM", pngDataUri(heatRaster(heat, it.width, it.height, cmap))),
        img("overlay", pngDataUri(overlayRaster(it.image, heat, it.width, it.height, { cmap }))),
      ),
      h(
        doc,
        "figcaption",
        {},
        h(doc, "strong", {}, it.title),
        details ? ` — ${details}` : null,
      ),
    ));
  }
  return [bar, grid];
}
