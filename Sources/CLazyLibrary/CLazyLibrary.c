#include "CLazyLibrary.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

const char *reel_lazy_library_load(struct reel_lazy_library *library) {
  if (__atomic_load_n(&library->state, __ATOMIC_ACQUIRE) == 1) {
    return NULL;
  }
  pthread_mutex_lock(&library->lock);
  if (library->state == 0) {
    int state = 1;
    void *handle = dlopen(library->soname, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
      const char *reason = dlerror();
      snprintf(library->message, sizeof library->message,
               "the shared library %s could not be loaded (%s); install the package %s",
               library->soname, reason ? reason : "no reason given", library->package);
      state = -1;
    }
    for (size_t index = 0; state == 1 && index < library->count; index++) {
      void *address = dlsym(handle, library->names[index]);
      if (address == NULL) {
        snprintf(library->message, sizeof library->message,
                 "the shared library %s has no function %s (too old a version?); install the "
                 "current package %s",
                 library->soname, library->names[index], library->package);
        state = -1;
      }
      library->slots[index] = address;
    }
    // A library that failed stays open if dlopen worked: its constructors may have run, and
    // nothing calls into it.
    __atomic_store_n(&library->state, state, __ATOMIC_RELEASE);
  }
  const char *result = library->state == 1 ? NULL : library->message;
  pthread_mutex_unlock(&library->lock);
  return result;
}

void reel_lazy_library_require(struct reel_lazy_library *library) {
  const char *message = reel_lazy_library_load(library);
  if (message != NULL) {
    fprintf(stderr, "reel: %s\n", message);
    abort();
  }
}
