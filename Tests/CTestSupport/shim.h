// Process-spawning calls that Swift's Glibc module does not export (glibc declares them
// only under _GNU_SOURCE). Declared here rather than included: <unistd.h> and <spawn.h>
// under _GNU_SOURCE differ from what the Glibc module saw, and the two would clash.
#ifndef REEL_CTESTSUPPORT_SHIM_H
#define REEL_CTESTSUPPORT_SHIM_H

/// pipe2(2): a pipe whose two ends get `flags` (O_CLOEXEC) atomically.
extern int pipe2(int fds[2], int flags);

/// A spawn file action that changes the child's working folder (`actions` is a
/// posix_spawn_file_actions_t *).
extern int posix_spawn_file_actions_addchdir_np(void *actions, const char *path);

/// A spawn file action that closes every descriptor from `from` up (glibc 2.34+).
extern int posix_spawn_file_actions_addclosefrom_np(void *actions, int from);

/// llistxattr(2), lgetxattr(2): Glibc's Swift module leaves <sys/xattr.h> out.
#include <sys/xattr.h>

#endif
