/** Public API of the data layer: loaders, image codecs, cache, augmentation, sampling, synthetic data. */
export * from "./types.ts";
export { findColumn, parseCsv, readCsv } from "./csv.ts";
export type { CsvRow, CsvTable } from "./csv.ts";
export { resolveInside } from "./paths.ts";
export {
  CHEXPERT_COMPETITION_TASKS,
  CHEXPERT_DEFAULT_TASK,
  CHEXPERT_OBSERVATIONS,
  type ChexpertOptions,
  findChexpertRoot,
  loadChexpert,
  resolveChexpertTasks,
} from "./chexpert.ts";
export { loadShenzhen, parseClinicalReading, SHENZHEN_TASK } from "./shenzhen.ts";
export type { ShenzhenOptions } from "./shenzhen.ts";
export { loadCsvDataset, loadFolder, patientFromFileName } from "./generic.ts";
export type { CsvOptions, FolderOptions } from "./generic.ts";
export { type DatasetSpec, detectKind, loadDataset, splitIndices } from "./load.ts";
export type { GrayImage } from "./gray_image.ts";
export { resampleRect, resizeAndCenterCrop, resizeShorterSide } from "./gray_image.ts";
export { crc32, decodePngGray, encodePngGray, isPng } from "./png.ts";
export {
  decodeJpegGray,
  decodeJpegGraySync,
  encodeJpegGray,
  isJpeg,
  jpegFrameSize,
} from "./jpeg.ts";
export { decodeImageGray, IMAGE_EXTENSIONS, isImagePath, readImageGray } from "./decode.ts";
export { checkImageSize, ImageDecodeError, MAX_IMAGE_PIXELS } from "./image_error.ts";
export { type DatasetIdentity, datasetIdentity, identityDifference } from "./identity.ts";
export { DataError, TooManyBadImagesError } from "./data_error.ts";
export * from "./augment.ts";
export {
  type BadImage,
  buildCache,
  CACHE_FORMAT,
  CACHE_VERSION,
  type CachedRecord,
  type CacheIndex,
  type CacheOptions,
  DEFAULT_MARGIN,
  defaultCacheDir,
  ensureCache,
  ImageCache,
  openCache,
  sourceChecksum,
  storedSizeFor,
  withDatasetLabels,
} from "./cache.ts";
export { DeviceTwoViews, slotParams } from "./augment_device.ts";
export * from "./fractions.ts";
export {
  type ChexpertSummary,
  ensureSyntheticChexpert,
  ensureSyntheticShenzhen,
  type WriteOptions,
  writeSyntheticChexpert,
  writeSyntheticShenzhen,
} from "./synth_write.ts";
export {
  planChexpert,
  renderShenzhenImage,
  SYNTH_VERSION,
  type SynthChexpertOptions,
  type SynthShenzhenOptions,
} from "./synth_dataset.ts";
export { renderFrontal, renderLateral } from "./synth_render.ts";
export {
  type Findings,
  sampleAcquisition,
  sampleAnatomy,
  sampleFindings,
  type Scene,
  sceneLabels,
} from "./synth_scene.ts";
