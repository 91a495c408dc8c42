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

/// copy_file_range(2) at explicit offsets (the file positions stay where they are).
static inline long long reel_copy_file_range(int from, long long fromOffset, int to, long long toOffset, size_t length) {
  off64_t in = (off64_t)fromOffset;
  off64_t out = (off64_t)toOffset;
  return (long long)copy_file_range(from, &in, to, &out, length, 0);
}

/// Starts writing the dirty pages of a file range to disk without waiting for them.
static inline int reel_start_writeback(int fd, long long offset, long long length) {
  return sync_file_range(fd, (off64_t)offset, (off64_t)length, SYNC_FILE_RANGE_WRITE);
}

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
/// CRC-32C with the SSE 4.2 instruction, 8 bytes at a time; `crc` is the running
/// (pre-inverted) state. Callers check `reel_has_crc32c_instruction()` first.
__attribute__((target("sse4.2"))) static inline uint32_t reel_crc32c_hw(uint32_t crc, const void *data, size_t length) {
  const unsigned char *bytes = (const unsigned char *)data;
  uint64_t state = crc;
  while (length >= 8) {
    uint64_t word;
    memcpy(&word, bytes, 8);
    state = __builtin_ia32_crc32di(state, word);
    bytes += 8;
    length -= 8;
  }
  uint32_t small = (uint32_t)state;
  while (length > 0) {
    small = __builtin_ia32_crc32qi(small, *bytes);
    bytes++;
    length--;
  }
  return small;
}

static inline int reel_has_crc32c_instruction(void) { return __builtin_cpu_supports("sse4.2"); }
#else
static inline uint32_t reel_crc32c_hw(uint32_t crc, const void *data, size_t length) { return crc; }
static inline int reel_has_crc32c_instruction(void) { return 0; }
#endif

/// Sets the calling thread's nice value (Linux keeps one per thread; threads it starts
/// inherit it). <sys/resource.h> is not included: under _GNU_SOURCE its enums differ from
/// the ones Swift's Glibc module saw, and the two modules then refuse to load together.
extern int setpriority(int which, unsigned int who, int prio);
static inline int reel_set_thread_nice(int nice) { return setpriority(0 /* PRIO_PROCESS */, (unsigned int)gettid(), nice); }
#endif
