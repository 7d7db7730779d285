/**
 * glibc raises its malloc thresholds for good the first time it frees a block it had mmapped that
 * is larger than the current threshold: the mmap threshold to that block's size, the heap trim
 * threshold to twice that, up to 32 MiB and 64 MiB on 64-bit systems (mallopt(3), "dynamic mmap
 * threshold"). Until then it hands the top of its heap back to the kernel as soon as 128 KiB are
 * free there.
 *
 * Streaming bodies makes that expensive. Every 64 KiB socket read is a new buffer, and V8 frees
 * them in batches of about 64 MB at each mark-compact. With the initial thresholds each batch went
 * back to the kernel and was taken again a few pages at a time: about 5,500 `brk` calls per GiB
 * uploaded, every page faulted in and zeroed anew. Uploads through Picasso ran at 0.5-0.8x the
 * speed of the same process with raised thresholds. Whether a process had them raised depended on
 * whether something happened to free a large block first, so the speed changed from one process to
 * the next.
 *
 * Freeing one such block at startup puts every process in the raised state. The cost is up to
 * 64 MiB of freed memory kept for reuse instead of returned. Thresholds an operator sets with
 * GLIBC_TUNABLES switch glibc's adjustment off and so take precedence. Another C library just sees
 * a short-lived allocation.
 */
export function keepFreedMemoryForReuse(): void {
  // Not kept: the first garbage collection frees it, which is what raises the thresholds.
  Buffer.allocUnsafeSlow(largestAdjustingBlockBytes);
}

/** Just under glibc's 32 MiB ceiling for the adjustment, leaving room for its chunk header. */
const largestAdjustingBlockBytes = 32 * 1024 * 1024 - 64 * 1024;
