#include <gcrypt.h>

// gcry_control is variadic, which Swift cannot call; these wrap the calls Reel makes.
static inline void gcry_control_initialization_finished(void) {
  gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
  gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
}
