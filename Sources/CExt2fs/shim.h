#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
