#include "CCurl.h"

REEL_LAZY_LIBRARY(reel_curl_load, "libcurl.so.4", "libcurl4", REEL_CURL_FUNCTIONS)

CURLcode reel_curl_setopt_long(CURL *handle, CURLoption option, long value) {
  reel_lazy_ready();
  return reel_lazy_functions.curl_easy_setopt(handle, option, value);
}

CURLcode reel_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
  reel_lazy_ready();
  return reel_lazy_functions.curl_easy_setopt(handle, option, value);
}

CURLcode reel_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
  reel_lazy_ready();
  return reel_lazy_functions.curl_easy_setopt(handle, option, value);
}

CURLcode reel_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
  reel_lazy_ready();
  return reel_lazy_functions.curl_easy_setopt(handle, option, value);
}

CURLcode reel_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
  reel_lazy_ready();
  return reel_lazy_functions.curl_easy_setopt(handle, option, value);
}

CURLcode reel_curl_setopt_callback(CURL *handle, CURLoption option, reel_curl_data_callback value) {
  reel_lazy_ready();
  return reel_lazy_functions.curl_easy_setopt(handle, option, value);
}

CURLcode reel_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
  reel_lazy_ready();
  return reel_lazy_functions.curl_easy_getinfo(handle, info, value);
}

CURLcode reel_curl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
  reel_lazy_ready();
  return reel_lazy_functions.curl_easy_getinfo(handle, info, value);
}
