/** Writing a cache's shard files. */
import { join } from "node:path";

/** Writes images in order into shard files of at most `perShard` images each. */
export class ShardWriter {
  readonly shards: { file: string; count: number }[] = [];
  private file: Deno.FsFile | null = null;
  private inShard = 0;
  constructor(private readonly dir: string, private readonly perShard: number) {}

  async write(img: Uint8Array): Promise<void> {
    if (!this.file || this.inShard === this.perShard) {
      this.file?.close();
      const name = `images-${String(this.shards.length).padStart(3, "0")}.u8`;
      this.file = await Deno.open(join(this.dir, name), {
        write: true,
        create: true,
        truncate: true,
      });
      this.shards.push({ file: name, count: 0 });
      this.inShard = 0;
    }
    let off = 0;
    while (off < img.length) off += await this.file.write(img.subarray(off));
    this.inShard++;
    this.shards[this.shards.length - 1].count++;
  }

  async close(): Promise<void> {
    if (this.file) {
      await this.file.sync();
      this.file.close();
    }
    this.file = null;
  }
}
