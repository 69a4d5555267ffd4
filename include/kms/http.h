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

/* Starts the HTTPS (or, when configured, plain HTTP) server; *port_out gets the bound port. */
kms_err kms_server_start(const struct kms_config *cfg, struct kms_server **out, int *port_out);
/* Stops accepting, finishes in-flight requests, frees the server. */
void kms_server_stop(struct kms_server *srv);

/* ---- devcert.c ---- */

/*
 * Writes a self-signed ECDSA P-256 development certificate for host (plus localhost, 127.0.0.1
 * and ::1) to cert_path and its key to key_path (mode 0600).
 */
kms_err kms_devcert_create(const char *cert_path, const char *key_path, const char *host);

#endif
