// Calls that Swift's Glibc module does not export (glibc declares them only under
// _GNU_SOURCE). Declared here rather than included: <unistd.h> under _GNU_SOURCE differs
// from what the Glibc module saw, and the two would clash. Child processes start through
// ReelIO's Spawn.
#ifndef REEL_CTESTSUPPORT_SHIM_H
#define REEL_CTESTSUPPORT_SHIM_H

/// pipe2(2): a pipe whose two ends get `flags` (O_CLOEXEC) atomically.
extern int pipe2(int fds[2], int flags);

/// llistxattr(2), lgetxattr(2): Glibc's Swift module leaves <sys/xattr.h> out.
#include <sys/xattr.h>

#endif
