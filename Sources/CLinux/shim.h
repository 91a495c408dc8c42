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

#include <malloc.h>

/// Blocks up to 64 MiB from the heap and freed memory kept up to 256 MiB: a restore
/// decodes every 256 KiB store block into a fresh buffer, which glibc otherwise maps,
/// the kernel faults in and zeroes, and glibc unmaps again, block after block.
static inline void reel_keep_large_allocations(void) {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

static inline int reel_punch_hole(int fd, long long offset, long long length) {
  return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
}

/// copy_file_range(2) at explicit offsets (the file positions stay where they are).
static inline long long reel_copy_file_range(int from, long long fromOffset, int to, long long toOffset, size_t length) {
  off64_t in = (off64_t)fromOffset;
  off64_t out = (off64_t)toOffset;
  return (long long)copy_file_range(from, &in, to, &out, length, 0);
}

/// O_PATH and AT_EMPTY_PATH, which Glibc only defines under _GNU_SOURCE.
static inline int reel_o_path(void) { return O_PATH; }
static inline int reel_at_empty_path(void) { return AT_EMPTY_PATH; }

/// syncfs(2): commits everything of the file system holding `fd` in one call.
static inline int reel_syncfs(int fd) { return syncfs(fd); }

/// A posix_spawn file action that closes every descriptor from `from` up in the child
/// (glibc 2.34+; declared only under _GNU_SOURCE). Declared inside the function so that
/// Swift sees only the wrapper.
static inline int reel_spawn_close_from(void *actions, int from) {
  extern int posix_spawn_file_actions_addclosefrom_np(void *actions, int from);
  return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

/// A posix_spawn file action that changes the child's working folder (glibc 2.29+;
/// declared only under _GNU_SOURCE).
static inline int reel_spawn_chdir(void *actions, const char *path) {
  extern int posix_spawn_file_actions_addchdir_np(void *actions, const char *path);
  return posix_spawn_file_actions_addchdir_np(actions, path);
}

/// POSIX_SPAWN_SETSID (glibc 2.26+, only under _GNU_SOURCE): the child starts a session
/// of its own.
static inline short reel_spawn_setsid_flag(void) {
#ifdef POSIX_SPAWN_SETSID
  return POSIX_SPAWN_SETSID;
#else
  return 0x80;  // its value in glibc's <spawn.h>
#endif
}

// Declared here: <sys/xattr.h> drags in <sys/select.h>, whose fd_set then clashes with
// other C modules' copy.
extern int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags);

/// lsetxattr(2): never follows a symbolic link at the path's last component.
static inline int reel_lsetxattr(const char *path, const char *name, const void *value, size_t size) {
  return lsetxattr(path, name, value, size, 0);
}

/// An anonymous file in memory (memfd_create(2), close-on-exec), declared here because
/// <sys/mman.h> only declares it under _GNU_SOURCE.
extern int memfd_create(const char *name, unsigned int flags);
static inline int reel_memfd_create(const char *name) { return memfd_create(name, 1U /* MFD_CLOEXEC */); }

/// O_DIRECT, which Glibc only defines under _GNU_SOURCE.
static inline int reel_o_direct(void) { return O_DIRECT; }

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

/// Advances a CRC-32C state over a fixed run of zero bytes: `shift` holds four 256-entry
/// tables, one per byte of the state (the operation is linear in the state).
static inline uint32_t reel_crc32c_shift(uint32_t crc, const uint32_t *shift) {
  return shift[crc & 0xFF] ^ shift[256 + ((crc >> 8) & 0xFF)] ^ shift[512 + ((crc >> 16) & 0xFF)] ^
         shift[768 + (crc >> 24)];
}

/// `reel_crc32c_hw` over runs of three `block`-byte blocks summed as three independent
/// chains, which the CPU overlaps (the instruction's latency is 3 cycles, its throughput
/// 1 per cycle); `shift` advances a state over `block` zero bytes (reel_crc32c_shift) and
/// joins them: crc(A B) = shift(crc(A)) ^ crc0(B). The tail goes through one chain.
__attribute__((target("sse4.2"))) static inline uint32_t reel_crc32c_hw_3way(uint32_t crc, const void *data,
                                                                              size_t length, size_t block,
                                                                              const uint32_t *shift) {
  const unsigned char *bytes = (const unsigned char *)data;
  uint64_t first = crc;
  while (length >= 3 * block) {
    uint64_t second = 0;
    uint64_t third = 0;
    const unsigned char *end = bytes + block;
    while (bytes < end) {
      uint64_t a, b, c;
      memcpy(&a, bytes, 8);
      memcpy(&b, bytes + block, 8);
      memcpy(&c, bytes + 2 * block, 8);
      first = __builtin_ia32_crc32di(first, a);
      second = __builtin_ia32_crc32di(second, b);
      third = __builtin_ia32_crc32di(third, c);
      bytes += 8;
    }
    first = reel_crc32c_shift((uint32_t)first, shift) ^ (uint32_t)second;
    first = reel_crc32c_shift((uint32_t)first, shift) ^ (uint32_t)third;
    bytes += 2 * block;
    length -= 3 * block;
  }
  return reel_crc32c_hw((uint32_t)first, bytes, length);
}

static inline int reel_has_crc32c_instruction(void) { return __builtin_cpu_supports("sse4.2"); }
#else
static inline uint32_t reel_crc32c_hw_3way(uint32_t crc, const void *data, size_t length, size_t block,
                                           const uint32_t *shift) {
  return crc;
}
static inline uint32_t reel_crc32c_hw(uint32_t crc, const void *data, size_t length) { return crc; }
static inline int reel_has_crc32c_instruction(void) { return 0; }
#endif

/// Sets the calling thread's nice value (Linux keeps one per thread; threads it starts
/// inherit it). <sys/resource.h> is not included: under _GNU_SOURCE its enums differ from
/// the ones Swift's Glibc module saw, and the two modules then refuse to load together.
extern int setpriority(int which, unsigned int who, int prio);
static inline int reel_set_thread_nice(int nice) { return setpriority(0 /* PRIO_PROCESS */, (unsigned int)gettid(), nice); }

/// Names the calling thread (at most 15 bytes show) for ps, top and debuggers. Declared
/// here rather than through <pthread.h>, for the same reason as setpriority above.
extern unsigned long pthread_self(void);
extern int pthread_setname_np(unsigned long thread, const char *name);
static inline void reel_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

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
