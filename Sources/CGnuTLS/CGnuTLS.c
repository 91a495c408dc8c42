#include "CGnuTLS.h"

REEL_LAZY_LIBRARY(reel_gnutls_load, "libgnutls.so.30", "libgnutls30", REEL_GNUTLS_FUNCTIONS)
