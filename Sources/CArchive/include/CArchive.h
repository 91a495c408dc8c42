#ifndef REEL_CARCHIVE_H
#define REEL_CARCHIVE_H

#include <archive.h>
#include <archive_entry.h>

#include "CLazyLibrary.h"

// libarchive is opened on first use (CLazyLibrary): call reel_archive_load first, then the
// reel_-prefixed functions. The library's own names are declared by archive.h but not linked.
#define REEL_ARCHIVE_FUNCTIONS(F, V, P)                                                        \
  F(struct archive *, archive_write_new, (void), ())                                           \
  F(int, archive_write_set_format_pax, (struct archive * archive), (archive))                  \
  F(int, archive_write_set_bytes_per_block, (struct archive * archive, int bytes),             \
    (archive, bytes))                                                                          \
  F(int, archive_write_open,                                                                   \
    (struct archive * archive, void *context, archive_open_callback *open,                     \
     archive_write_callback *write, archive_close_callback *close),                            \
    (archive, context, open, write, close))                                                    \
  F(int, archive_write_header, (struct archive * archive, struct archive_entry * entry),       \
    (archive, entry))                                                                          \
  F(la_ssize_t, archive_write_data,                                                            \
    (struct archive * archive, const void *bytes, size_t count), (archive, bytes, count))      \
  F(int, archive_write_finish_entry, (struct archive * archive), (archive))                    \
  F(int, archive_write_close, (struct archive * archive), (archive))                           \
  F(int, archive_write_free, (struct archive * archive), (archive))                            \
  F(struct archive *, archive_read_new, (void), ())                                            \
  F(int, archive_read_support_format_tar, (struct archive * archive), (archive))               \
  F(int, archive_read_open,                                                                    \
    (struct archive * archive, void *context, archive_open_callback *open,                     \
     archive_read_callback *read, archive_close_callback *close),                              \
    (archive, context, open, read, close))                                                     \
  F(int, archive_read_next_header, (struct archive * archive, struct archive_entry * *entry),  \
    (archive, entry))                                                                          \
  F(int, archive_read_data_block,                                                              \
    (struct archive * archive, const void **bytes, size_t *count, la_int64_t *offset),         \
    (archive, bytes, count, offset))                                                           \
  F(int, archive_read_free, (struct archive * archive), (archive))                             \
  F(const char *, archive_error_string, (struct archive * archive), (archive))                 \
  F(struct archive_entry *, archive_entry_new, (void), ())                                     \
  V(archive_entry_free, (struct archive_entry * entry), (entry))                               \
  F(const char *, archive_entry_pathname, (struct archive_entry * entry), (entry))             \
  F(const char *, archive_entry_pathname_utf8, (struct archive_entry * entry), (entry))        \
  V(archive_entry_set_pathname_utf8, (struct archive_entry * entry, const char *name),         \
    (entry, name))                                                                             \
  F(mode_t, archive_entry_filetype, (struct archive_entry * entry), (entry))                   \
  V(archive_entry_set_filetype, (struct archive_entry * entry, unsigned int type),             \
    (entry, type))                                                                             \
  V(archive_entry_set_perm, (struct archive_entry * entry, mode_t mode), (entry, mode))        \
  V(archive_entry_set_uid, (struct archive_entry * entry, la_int64_t uid), (entry, uid))       \
  V(archive_entry_set_gid, (struct archive_entry * entry, la_int64_t gid), (entry, gid))       \
  V(archive_entry_set_uname, (struct archive_entry * entry, const char *name), (entry, name))  \
  V(archive_entry_set_gname, (struct archive_entry * entry, const char *name), (entry, name))  \
  V(archive_entry_set_mtime, (struct archive_entry * entry, time_t seconds, long nanoseconds), \
    (entry, seconds, nanoseconds))                                                             \
  V(archive_entry_set_size, (struct archive_entry * entry, la_int64_t size), (entry, size))    \
  F(la_int64_t, archive_entry_size, (struct archive_entry * entry), (entry))                   \
  F(int, archive_entry_size_is_set, (struct archive_entry * entry), (entry))                   \
  F(int, archive_entry_sparse_count, (struct archive_entry * entry), (entry))

REEL_LAZY_DECLARATIONS(REEL_ARCHIVE_FUNCTIONS)

/// Opens libarchive: NULL once it is ready, else why not (the library and package named).
const char *reel_archive_load(void);

#endif
