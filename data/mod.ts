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
export { loadCsvDataset, loadFolder, NEGATIVE_CLASS_NAMES, PATIENT_COLUMNS } from "./generic.ts";
export {
  applyPatientPattern,
  patientFromFileName,
  PatientPatternError,
  patientsFromPaths,
} from "./patients.ts";
export { DuplicatePaths, refuseDuplicatePaths } from "./duplicates.ts";
export type { CsvOptions, FolderOptions } from "./generic.ts";
export { type DatasetSpec, detectKind, loadDataset, splitIndices } from "./load.ts";
export type { GrayImage } from "./gray_image.ts";
export { resampleRect, resizeAndCenterCrop, resizeShorterSide } from "./gray_image.ts";
export { chunk, crc32, isPng, PNG_SIGNATURE } from "./png_format.ts";
export { decodePngGray, inflatedSize } from "./png_decode.ts";
export {
  encodePng,
  encodePngGray,
  type PngEncodeOptions,
  type PngFilter,
  type RasterImage,
} from "./png_encode.ts";
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
  CACHE_FORMAT,
  CACHE_VERSION,
  type CachedRecord,
  type CacheIndex,
  type CacheSizing,
  DEFAULT_MARGIN,
  defaultCacheDir,
  storedSizeFor,
} from "./cache/format.ts";
export { ImageCache, openCache, withDatasetLabels } from "./cache/reader.ts";
export { sourceChecksum } from "./cache/checksum.ts";
export { buildCache, type CacheOptions, ensureCache } from "./cache/builder.ts";
export { DeviceTwoViews, slotParams } from "./augment_device.ts";
export * from "./fractions.ts";
export {
  type ChexpertSummary,
  ensureSyntheticChexpert,
  ensureSyntheticShenzhen,
  type WriteOptions,
  writeSyntheticChexpert,
  writeSyntheticShenzhen,
} from "./synth/write.ts";
export {
  planChexpert,
  renderShenzhenImage,
  SYNTH_VERSION,
  type SynthChexpertOptions,
  type SynthShenzhenOptions,
} from "./synth/dataset.ts";
export { renderFrontal, renderLateral } from "./synth/render.ts";
export {
  type Findings,
  sampleAcquisition,
  sampleAnatomy,
  sampleFindings,
  type Scene,
  sceneLabels,
} from "./synth/scene.ts";
