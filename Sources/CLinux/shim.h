// Linux calls that Swift's Glibc module does not export (they need _GNU_SOURCE or
// kernel headers), wrapped as static inline functions so no C target is compiled.
#ifndef REEL_CLINUX_SHIM_H
#define REEL_CLINUX_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

static inline int reel_punch_hole(int fd, long long offset, long long length) {
  return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
}
/// Flushes every dirty page of the file system holding `fd`: one call makes a batch of
/// freshly written chunk files durable, instead of one fsync per file.
static inline int reel_syncfs(int fd) { return syncfs(fd); }
#endif
