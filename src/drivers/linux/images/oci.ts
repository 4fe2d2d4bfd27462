// OCI images in and out of carte's layer store (issue 16 part 1).
//   importOciLayout     an OCI image layout folder (index.json, oci-layout, blobs/sha256/…)
//   exportOciLayout     an image → an OCI image layout folder (gzip layers, deterministic)
//   importImageArchive  a file: an OCI archive (tar of a layout), a `docker save`
//                       archive (manifest.json + repositories), or a plain rootfs tar
// Each OCI layer becomes one carte layer (an unpacked tree used as an
// overlayfs lowerdir): OCI whiteouts become overlayfs whiteouts, so stacking
// the layers gives the image's view.
import { CarteError } from '../../../errors.js';
import type { ImageRecord, ImageStore } from './store.js';

export interface OciImportOptions {
  /** name:tag the imported image gets. */
  tag: string;
  /** Which image of index.json: its `org.opencontainers.image.ref.name` annotation, or its digest (sha256:…). Default: the only one. */
  select?: string;
  /** Hears what the import is doing (one line per layer), for a progress display. */
  onProgress?: (line: string) => void;
}

/** Imports the image an OCI layout folder holds; verifies every digest; stores nothing when anything is wrong. */
export async function importOciLayout(images: ImageStore, layoutDir: string, opts: OciImportOptions): Promise<ImageRecord> {
  void images; void layoutDir; void opts;
  throw new CarteError('image', 'importing OCI layouts is not implemented yet');
}

/** Writes `ref` as an OCI image layout into `layoutDir` (created, or added to when it is already a layout). */
export async function exportOciLayout(images: ImageStore, ref: string, layoutDir: string): Promise<{ manifestDigest: string }> {
  void images; void ref; void layoutDir;
  throw new CarteError('image', 'exporting OCI layouts is not implemented yet');
}

export type ArchiveFormat = 'oci-archive' | 'docker-archive' | 'rootfs';

/** Imports a file of any format carte knows, detected from its contents. */
export async function importImageArchive(images: ImageStore, file: string, tag: string, opts: { onLeftOut?: (line: string) => void; onProgress?: (line: string) => void } = {}): Promise<ImageRecord & { format: ArchiveFormat }> {
  void images; void file; void tag; void opts;
  throw new CarteError('image', 'importing image archives is not implemented yet');
}
