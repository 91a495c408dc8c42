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

/// The kernel's <linux/mtio.h>, not glibc's <sys/mtio.h>: the latter pulls in
/// <sys/select.h>, whose fd_set differs under _GNU_SOURCE and breaks other C modules.
#include <linux/mtio.h>
extern int ioctl(int fd, unsigned long int request, ...);

/// One st-driver tape operation (MTIOCTOP is a macro Swift cannot import): MTSETBLK,
/// MTWEOF, MTFSF, MTBSF, MTREW, MTEOM with its count. Returns ioctl's result; errno is set.
static inline int reel_tape_operation(int fd, int operation, int count) {
  struct mtop op;
  op.mt_op = (short)operation;
  op.mt_count = count;
  return ioctl(fd, MTIOCTOP, &op);
}

/// MTIOCGET: the drive's file and block number, generic status bits (GMT_*) and the
/// block size field of the status register. Fails with ENOTTY on anything not a tape.
static inline int reel_tape_status(int fd, long *file, long *block, long *status, long *blockSize) {
  struct mtget get;
  int result = ioctl(fd, MTIOCGET, &get);
  if (result == 0) {
    *file = (long)get.mt_fileno;
    *block = (long)get.mt_blkno;
    *status = get.mt_gstat;
    *blockSize = (get.mt_dsreg & MT_ST_BLKSIZE_MASK) >> MT_ST_BLKSIZE_SHIFT;
  }
  return result;
}
#endif
