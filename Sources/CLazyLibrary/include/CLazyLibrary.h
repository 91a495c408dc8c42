#ifndef REEL_LAZY_LIBRARY_H
#define REEL_LAZY_LIBRARY_H

#include <pthread.h>
#include <stddef.h>

/// A shared library `reel` opens on first use instead of at start-up. Libraries that only
/// some commands need (libcurl for S3, GnuTLS for NBD over TLS, libarchive for sealed
/// archives) would otherwise be mapped and relocated, with the dozens of libraries they
/// pull in, by every command — on a cold page cache that is most of a command's start.
///
/// A wrapper target (CCurl, CGnuTLS, CArchive) describes its library with
/// REEL_LAZY_LIBRARY and calls through the resolved pointers; see CCurl for the pattern.
struct reel_lazy_library {
  const char *soname;
  /// The Debian package that installs `soname`, named in the error.
  const char *package;
  const char *const *names;
  /// `count` slots, filled with the addresses of `names` in order.
  void **slots;
  size_t count;
  pthread_mutex_t lock;
  /// 0: not tried; 1: loaded; -1: failed, `message` says why. Written under `lock`.
  int state;
  char message[512];
};

/// Opens the library and resolves every name, once; later calls return at once. NULL when
/// the library is ready; otherwise a message naming the library, what failed and the package
/// to install, which stays valid for the life of the process.
const char *reel_lazy_library_load(struct reel_lazy_library *library);

/// Loads the library or, if that fails, writes the message to standard error and aborts:
/// what a wrapper does when called before its target's load function succeeded — a bug
/// in the caller, which must check the load function's result first.
void reel_lazy_library_require(struct reel_lazy_library *library);

// A wrapper target lists its library's functions in one macro, FUNCTIONS(F, V, P):
//   F(return type, name, (parameters), (arguments))  a function that returns a value;
//   V(name, (parameters), (arguments))               one that returns nothing;
//   P(return type, name, (parameters))               one resolved but not wrapped (variadic:
//                                                    the target's own functions call it).
// Its header declares `reel_NAME` for every F and V with REEL_LAZY_DECLARATIONS(FUNCTIONS),
// and its .c file defines them, the table and LOADER with
// REEL_LAZY_LIBRARY(LOADER, SONAME, PACKAGE, FUNCTIONS). The .c file calls a P function as
// `reel_lazy_functions.NAME(…)` after `reel_lazy_ready()`.
#define REEL_LAZY_DECLARATION_F(type, name, parameters, arguments) type reel_##name parameters;
#define REEL_LAZY_DECLARATION_V(name, parameters, arguments) void reel_##name parameters;
#define REEL_LAZY_DECLARATION_P(type, name, parameters)
#define REEL_LAZY_DECLARATIONS(FUNCTIONS) \
  FUNCTIONS(REEL_LAZY_DECLARATION_F, REEL_LAZY_DECLARATION_V, REEL_LAZY_DECLARATION_P)

#define REEL_LAZY_POINTER_F(type, name, parameters, arguments) type(*name) parameters;
#define REEL_LAZY_POINTER_V(name, parameters, arguments) void(*name) parameters;
#define REEL_LAZY_POINTER_P(type, name, parameters) type(*name) parameters;
#define REEL_LAZY_NAME_F(type, name, parameters, arguments) #name,
#define REEL_LAZY_NAME_V(name, parameters, arguments) #name,
#define REEL_LAZY_NAME_P(type, name, parameters) #name,
#define REEL_LAZY_WRAPPER_F(type, name, parameters, arguments) \
  type reel_##name parameters {                                \
    reel_lazy_ready();                                         \
    return (reel_lazy_functions.name) arguments;               \
  }
#define REEL_LAZY_WRAPPER_V(name, parameters, arguments) \
  void reel_##name parameters {                          \
    reel_lazy_ready();                                   \
    (reel_lazy_functions.name) arguments;                \
  }
#define REEL_LAZY_WRAPPER_P(type, name, parameters)

#define REEL_LAZY_LIBRARY(LOADER, SONAME, PACKAGE, FUNCTIONS)                                    \
  static struct {                                                                               \
    FUNCTIONS(REEL_LAZY_POINTER_F, REEL_LAZY_POINTER_V, REEL_LAZY_POINTER_P)                    \
  } reel_lazy_functions;                                                                        \
  static const char *const reel_lazy_names[] = {                                                \
      FUNCTIONS(REEL_LAZY_NAME_F, REEL_LAZY_NAME_V, REEL_LAZY_NAME_P)};                         \
  _Static_assert(sizeof reel_lazy_functions ==                                                  \
                     sizeof reel_lazy_names / sizeof *reel_lazy_names * sizeof(void *),         \
                 "one pointer per name");                                                       \
  static struct reel_lazy_library reel_lazy_table = {                                           \
      SONAME, PACKAGE, reel_lazy_names, (void **)&reel_lazy_functions,                          \
      sizeof reel_lazy_names / sizeof *reel_lazy_names, PTHREAD_MUTEX_INITIALIZER, 0, {0}};     \
  static inline void reel_lazy_ready(void) {                                                    \
    if (__builtin_expect(__atomic_load_n(&reel_lazy_table.state, __ATOMIC_ACQUIRE) != 1, 0)) {  \
      reel_lazy_library_require(&reel_lazy_table);                                             \
    }                                                                                           \
  }                                                                                             \
  const char *LOADER(void) { return reel_lazy_library_load(&reel_lazy_table); }                 \
  FUNCTIONS(REEL_LAZY_WRAPPER_F, REEL_LAZY_WRAPPER_V, REEL_LAZY_WRAPPER_P)

#endif
