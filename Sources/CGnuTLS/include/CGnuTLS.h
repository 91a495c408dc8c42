#ifndef REEL_CGNUTLS_H
#define REEL_CGNUTLS_H

#include <gnutls/gnutls.h>

#include "CLazyLibrary.h"

// GnuTLS is opened on first use (CLazyLibrary): call reel_gnutls_load first, then the
// reel_-prefixed functions. The library's own names are declared by gnutls.h but not linked.
#define REEL_GNUTLS_FUNCTIONS(F, V, P)                                                         \
  F(const char *, gnutls_strerror, (int error), (error))                                       \
  F(int, gnutls_error_is_fatal, (int error), (error))                                          \
  F(int, gnutls_psk_allocate_server_credentials, (gnutls_psk_server_credentials_t * res),      \
    (res))                                                                                     \
  V(gnutls_psk_free_server_credentials, (gnutls_psk_server_credentials_t res), (res))          \
  F(int, gnutls_psk_set_server_credentials_file,                                               \
    (gnutls_psk_server_credentials_t res, const char *file), (res, file))                      \
  F(int, gnutls_psk_set_server_known_dh_params,                                                \
    (gnutls_psk_server_credentials_t res, gnutls_sec_param_t level), (res, level))             \
  F(const char *, gnutls_psk_server_get_username, (gnutls_session_t session), (session))       \
  F(int, gnutls_certificate_allocate_credentials, (gnutls_certificate_credentials_t * res),    \
    (res))                                                                                     \
  V(gnutls_certificate_free_credentials, (gnutls_certificate_credentials_t res), (res))        \
  F(int, gnutls_certificate_set_x509_key_file,                                                 \
    (gnutls_certificate_credentials_t res, const char *certificate, const char *key,           \
     gnutls_x509_crt_fmt_t format),                                                            \
    (res, certificate, key, format))                                                           \
  F(int, gnutls_certificate_set_x509_trust_file,                                               \
    (gnutls_certificate_credentials_t res, const char *file, gnutls_x509_crt_fmt_t format),    \
    (res, file, format))                                                                       \
  F(int, gnutls_certificate_set_known_dh_params,                                               \
    (gnutls_certificate_credentials_t res, gnutls_sec_param_t level), (res, level))            \
  V(gnutls_certificate_server_set_request,                                                     \
    (gnutls_session_t session, gnutls_certificate_request_t request), (session, request))      \
  F(int, gnutls_priority_init,                                                                 \
    (gnutls_priority_t * priority, const char *priorities, const char **error), \
    (priority, priorities, error))                                                             \
  V(gnutls_priority_deinit, (gnutls_priority_t priority), (priority))                          \
  F(int, gnutls_init, (gnutls_session_t * session, unsigned int flags), (session, flags))      \
  V(gnutls_deinit, (gnutls_session_t session), (session))                                      \
  F(int, gnutls_priority_set, (gnutls_session_t session, gnutls_priority_t priority),          \
    (session, priority))                                                                       \
  F(int, gnutls_credentials_set,                                                               \
    (gnutls_session_t session, gnutls_credentials_type_t type, void *credentials),             \
    (session, type, credentials))                                                              \
  V(gnutls_session_set_verify_cert,                                                            \
    (gnutls_session_t session, const char *hostname, unsigned flags),                          \
    (session, hostname, flags))                                                                \
  V(gnutls_transport_set_int2, (gnutls_session_t session, int receive, int send),              \
    (session, receive, send))                                                                  \
  F(int, gnutls_handshake, (gnutls_session_t session), (session))                              \
  F(gnutls_credentials_type_t, gnutls_auth_get_type, (gnutls_session_t session), (session))    \
  F(gnutls_protocol_t, gnutls_protocol_get_version, (gnutls_session_t session), (session))     \
  F(const char *, gnutls_protocol_get_name, (gnutls_protocol_t version), (version))            \
  F(gnutls_cipher_algorithm_t, gnutls_cipher_get, (gnutls_session_t session), (session))       \
  F(const char *, gnutls_cipher_get_name, (gnutls_cipher_algorithm_t cipher), (cipher))        \
  F(size_t, gnutls_record_get_max_size, (gnutls_session_t session), (session))                 \
  F(ssize_t, gnutls_record_recv, (gnutls_session_t session, void *data, size_t size),          \
    (session, data, size))                                                                     \
  F(ssize_t, gnutls_record_send, (gnutls_session_t session, const void *data, size_t size),    \
    (session, data, size))                                                                     \
  F(int, gnutls_bye, (gnutls_session_t session, gnutls_close_request_t how), (session, how))

REEL_LAZY_DECLARATIONS(REEL_GNUTLS_FUNCTIONS)

/// Opens GnuTLS: NULL once it is ready, else why not (the library and package named).
const char *reel_gnutls_load(void);

#endif
