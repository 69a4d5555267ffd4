/*
 * http.h - the request as the rest of the house sees it, and the HTTP front end.
 *
 * src/http/server.c turns libmicrohttpd connections into a struct kms_request; src/http/request.c
 * parses the query string and form body into one parameter map. Nothing past this header ever
 * touches libmicrohttpd.
 */
#ifndef KMS_HTTP_H
#define KMS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "kms/error.h"
#include "kms/util.h"

/* Where a parameter came from: V3 signs only the query ones. */
enum kms_param_source {
    KMS_PARAM_QUERY = 1,
    KMS_PARAM_BODY = 2,
};

/* One decoded parameter. name and value are NUL-terminated and hold no NUL bytes. */
struct kms_param {
    char *name;
    size_t name_len;
    char *value;
    size_t value_len;
    enum kms_param_source source;
};

/* Query and form body merged; after kms_params_finish() sorted by name (bytewise), no duplicates.
 */
struct kms_params {
    struct kms_param *items;
    size_t count;
    size_t cap;
    struct kms_params_block *blocks; /* the decoded text, one block per parsed text */
};

/*
 * Parses application/x-www-form-urlencoded text ("a=1&b=%20x", "+" is a space) and appends every
 * pair to p. Undecodable escapes or bytes that are not UTF-8 -> KMS_E_PARSE_REQUEST. A pair
 * without "=" counts as a name with an empty value; empty pairs ("a=1&&b=2") are skipped.
 */
kms_err kms_params_parse(struct kms_params *p, const char *text, size_t len,
                         enum kms_param_source source);

/* Sorts p by name; a name present twice -> KMS_E_INVALID_PARAMETER with *dup_name set to it. */
kms_err kms_params_finish(struct kms_params *p, const char **dup_name);

/* The parameter called name (exact, case-sensitive), or NULL. p must be finished. */
const struct kms_param *kms_params_find(const struct kms_params *p, const char *name);

/* Frees everything p owns; values are wiped first (they may carry plaintext). */
void kms_params_free(struct kms_params *p);

/* One request header; names are lower-cased by the front end. */
struct kms_header {
    char *name;
    char *value;
};

/* A complete request, as handed from http/ to api/. */
struct kms_request {
    const char *method; /* "GET", "POST", ... as received */
    const char *path;   /* path without the query, e.g. "/" */
    const char *query;  /* raw query string after '?', not decoded ("" if none) */
    size_t query_len;
    const unsigned char *body; /* raw body bytes (may be NULL when empty) */
    size_t body_len;
    struct kms_header *headers; /* every header, lower-case names */
    size_t header_count;
    char peer_ip[64]; /* textual TCP peer address, IPv4-mapped IPv6 unwrapped */
    bool too_large;   /* the URL or body exceeded the configured limits */
};

/* The first header called name (lower-case), or NULL. */
const char *kms_request_header(const struct kms_request *req, const char *name);

/* What api/ hands back for the front end to send. */
struct kms_response {
    int status;
    const char *content_type;
    char *body; /* malloc'd; the front end frees it */
    size_t body_len;
    char request_id[KMS_UUID_LEN];
};

struct kms_config;
struct kms_server;

/* Starts the HTTPS (or, when configured, plain HTTP) server; *port_out gets the bound port.
 * HTTPS needs the certificate loaded first (kms_tls_load). */
kms_err kms_server_start(const struct kms_config *cfg, struct kms_server **out, int *port_out);
/* Stops at once: closes every connection (a request inside its handler completes first). */
void kms_server_stop(struct kms_server *srv);
/*
 * Graceful stop (SIGTERM): stops accepting connections, answers what is already under way
 * (responses then carry Connection: close), waits up to timeout_s seconds for the requests in
 * flight, then stops. A request that comes late on a kept-alive connection gets 503. *cut gets
 * the number of requests still in flight when the time ran out. abort_early, when not NULL, is
 * polled while waiting: true ends the wait (a second signal).
 */
void kms_server_shutdown(struct kms_server *srv, int timeout_s, bool (*abort_early)(void),
                         unsigned *cut);

/* ---- tls.c: the certificate of every TLS listener ---- */

/*
 * Loads (first call) or replaces (SIGHUP) the certificate chain and key every TLS listener
 * presents. A file that does not parse, a key that does not match, or (on a reload) a
 * certificate outside its validity leaves the current one in place; the reason is logged and
 * KMS_E_INVALID_PARAMETER returned.
 */
kms_err kms_tls_load(const char *cert_file, const char *key_file);
/* The GnuTLS retrieve function (gnutls_certificate_retrieve_function2 *) for
 * MHD_OPTION_HTTPS_CERT_CALLBACK. */
void *kms_tls_callback(void);
void kms_tls_shutdown(void);

/* ---- admin.c: the operators' listener (/healthz, /metrics) ---- */

struct kms_admin;
/* Starts it when [admin] listen is set (*out stays NULL otherwise); *port_out gets the port.
 * A non-loopback address without [admin] tls = true is refused. */
kms_err kms_admin_start(const struct kms_config *cfg, struct kms_admin **out, int *port_out);
void kms_admin_stop(struct kms_admin *admin);

/* ---- devcert.c ---- */

/*
 * Writes a self-signed ECDSA P-256 development certificate for host (plus localhost, 127.0.0.1
 * and ::1) to cert_path and its key to key_path (mode 0600).
 */
kms_err kms_devcert_create(const char *cert_path, const char *key_path, const char *host);

#endif
