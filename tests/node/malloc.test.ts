// keepFreedMemoryForReuse() raises glibc's malloc thresholds (see app/node/malloc.ts). Observable
// from outside: with the mmap threshold raised to about 32 MiB, 8 MiB buffers come from the brk
// heap instead of separate mappings, so /proc/self/maps shows the heap growing by their size.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const child = fileURLToPath(new URL("../fixtures/malloc-heap-growth.ts", import.meta.url));
const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
const header = report?.header;
const glibc = process.platform === "linux" && typeof header?.glibcVersionRuntime === "string";

function heapGrowth(mode: "raised" | "initial"): number {
  const output = execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", child, mode], {
    encoding: "utf8",
    timeout: 30_000,
  });
  return (JSON.parse(output) as { grewMiB: number }).grewMiB;
}

describe.skipIf(!glibc)("keepFreedMemoryForReuse (glibc)", () => {
  it("raises the mmap threshold, so large buffers come from the reusable heap", () => {
    expect(heapGrowth("raised")).toBeGreaterThanOrEqual(75);
  });

  it("starts from glibc's initial threshold, where the same buffers are mmapped one by one", () => {
    // The control: if Node itself ever raised the thresholds, this would say so.
    expect(heapGrowth("initial")).toBeLessThan(8);
  });
});
