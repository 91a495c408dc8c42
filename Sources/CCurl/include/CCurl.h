#ifndef REEL_CCURL_H
#define REEL_CCURL_H

// Swift sees the plain prototypes; the type-checking macros are for C callers.
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "CLazyLibrary.h"

// libcurl is opened on first use (CLazyLibrary): call reel_curl_load first, then the
// reel_-prefixed functions. The library's own names are declared by curl.h but not linked.
#define REEL_CURL_FUNCTIONS(F, V, P)                                                        \
  F(CURLcode, curl_global_init, (long flags), (flags))                                      \
  F(CURL *, curl_easy_init, (void), ())                                                     \
  V(curl_easy_cleanup, (CURL * handle), (handle))                                           \
  V(curl_easy_reset, (CURL * handle), (handle))                                             \
  F(CURLcode, curl_easy_perform, (CURL * handle), (handle))                                 \
  F(const char *, curl_easy_strerror, (CURLcode code), (code))                              \
  F(struct curl_slist *, curl_slist_append, (struct curl_slist * list, const char *string), \
    (list, string))                                                                         \
  V(curl_slist_free_all, (struct curl_slist * list), (list))                                \
  P(CURLcode, curl_easy_setopt, (CURL * handle, CURLoption option, ...))                    \
  P(CURLcode, curl_easy_getinfo, (CURL * handle, CURLINFO info, ...))

REEL_LAZY_DECLARATIONS(REEL_CURL_FUNCTIONS)

/// Opens libcurl: NULL once it is ready, else why not (the library and package named).
const char *reel_curl_load(void);

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call; these wrap
// them by the type of the value each option takes.
typedef size_t (*reel_curl_data_callback)(char *buffer, size_t size, size_t count, void *context);

CURLcode reel_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode reel_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode reel_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode reel_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode reel_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
/// CURLOPT_WRITEFUNCTION, CURLOPT_READFUNCTION or CURLOPT_HEADERFUNCTION.
CURLcode reel_curl_setopt_callback(CURL *handle, CURLoption option, reel_curl_data_callback value);
CURLcode reel_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode reel_curl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);

#endif
