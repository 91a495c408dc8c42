#include "CArchive.h"

REEL_LAZY_LIBRARY(reel_archive_load, "libarchive.so.13", "libarchive13", REEL_ARCHIVE_FUNCTIONS)
