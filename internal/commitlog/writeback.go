package commitlog

// Early writeback.
//
// Left alone, the kernel lets dirty page cache pile up to
// vm.dirty_background_ratio (10% of memory: gigabytes) and then writes it
// back in bulk. While such a backlog drains, each buffered write to the
// active segment costs several times its usual CPU (measured on a 2-core VM
// at 228 MiB/s of produce: the broker went from about 0.55 to over 0.8
// cores, the increase nearly all in pwrite's copy into the page cache, and
// p99 produce latency from a few to hundreds of milliseconds), and a sync(2)
// anywhere on the machine has gigabytes to flush. So appends hand every
// writebackBytes of a segment to the kernel's writeback as soon as they are
// written (segment.observe, startWriteback), and dirty pages stay in the
// tens of megabytes.
//
// Durability is unchanged: nothing waits for this writeback and nothing is
// acknowledged because of it. fsync (Flush, flush.messages) is still what
// makes data durable; this only means it finds less to do.

// writebackBytes is how many appended bytes of a segment accumulate before
// they are handed to writeback.
const writebackBytes = 4 << 20

// writebackAlign is the granularity of the ranges handed to writeback, a
// multiple of the page size, so that the partly filled last page, which the
// next append dirties again, is left for a later range.
const writebackAlign = 64 << 10
