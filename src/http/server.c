/*
 * server.c - the HTTPS front end on libmicrohttpd's thread pool: TLS, connection limits, the raw
 * request (URI, headers, body) handed to api/, and the response sent back.
 *
 * The raw URI comes from MHD's URI log callback, before MHD decodes anything: parameters are
 * decoded once, by request.c, and the signature checks re-encode them from decoded values.
 *
 * TLS: the certificate comes from tls.c through GnuTLS's retrieve callback, so SIGHUP can replace
 * it under a running listener. Stopping (SIGTERM): the accept policy closes every new connection
 * at once, requests already under way are counted from their request line to their completion
 * and waited for, then the daemon stops (kms_server_shutdown). Not MHD_quiesce_daemon: in
 * libmicrohttpd 0.9.75 it races the epoll worker threads over removing the listen socket from
 * their epoll sets, and the loser aborts the process ("Failed to remove listen FD from epoll set").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "kms/api.h"
#include "kms/config.h"
#include "kms/http.h"
#include "kms/log.h"

/*
 * libmicrohttpd's own messages (a refused connection, a failed TLS handshake) go through kmsd's
 * log, at most KMS_HTTP_LOG_BURST per KMS_HTTP_LOG_WINDOW seconds: a flood of connections must
 * not become a flood of log lines. How many were dropped is said with the next one let through.
 */
#define KMS_HTTP_LOG_BURST  20
#define KMS_HTTP_LOG_WINDOW 10

static pthread_mutex_t kms_http_log_mu = PTHREAD_MUTEX_INITIALIZER;
static time_t kms_http_log_start;
static unsigned kms_http_log_count;
static unsigned long kms_http_log_dropped;

/*
 * What libmicrohttpd's pool needs beside the request line: the header lines (an SDK sends well
 * under 1 KiB), one record per header and per query parameter taken from the pool's end (64
 * bytes each: 16 KiB is ~250 parameters), and the response's header block.
 */
#define KMS_HTTP_HEADER_ALLOWANCE (16 * 1024)
#define KMS_HTTP_MAX_HEADERS      64
/* Header names and values of a usual request fit here; more take one allocation. */
#define KMS_HTTP_HEADER_INLINE 1024

#define KMS_HTTP_DRAIN_POLL_MS 10 /* how often a graceful stop looks at the requests in flight */

struct kms_server {
    struct MHD_Daemon *srv_daemon;
    const struct kms_config *srv_cfg;
    atomic_uint srv_in_flight; /* requests between their request line and their completion */
    atomic_bool srv_draining;  /* stopping: answer what is under way, with Connection: close */
    atomic_bool srv_refusing;  /* the wait is over: a request that starts now is not served */
};

/* Per-request state, created when the request line arrives. */
struct kms_http_req {
    char *hr_uri; /* raw URI (path?query), NULL when over the limit */
    size_t hr_uri_len;
    bool hr_started;
    bool hr_too_large;
    bool hr_refused; /* arrived after the graceful stop's wait: closed unanswered */
    struct kms_buf hr_body;
    size_t hr_header_count;
    /* Copies of the header names (lower-cased) and values: hr_inline, or hr_spill when larger. */
    char *hr_text;
    size_t hr_text_used;
    char *hr_spill;
    /* The arrays are written before they are read, so a new request leaves them as they are. */
    struct kms_header hr_headers[KMS_HTTP_MAX_HEADERS];
    char hr_inline[KMS_HTTP_HEADER_INLINE];
};

static void kms_http_req_free(struct kms_http_req *r)
{
    if (r == NULL)
        return;
    /*
     * The raw URI holds every parameter of an SDK request, percent-encoded: plaintexts, secret
     * values, data keys. Wiped whole, including the part after the '?' that kms_http_respond
     * cut off with a NUL.
     */
    if (r->hr_uri != NULL) {
        OPENSSL_cleanse(r->hr_uri, r->hr_uri_len);
        free(r->hr_uri);
    }
    kms_buf_free_secret(&r->hr_body);
    /* Headers may carry credentials (x-acs-security-token). */
    if (r->hr_text != NULL)
        OPENSSL_cleanse(r->hr_text, r->hr_text_used);
    free(r->hr_spill);
    free(r);
}

static void kms_http_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    unsigned long dropped = 0;
    time_t now = time(NULL);
    bool emit;
    size_t n;

    pthread_mutex_lock(&kms_http_log_mu);
    if (now - kms_http_log_start >= KMS_HTTP_LOG_WINDOW) {
        dropped = kms_http_log_dropped;
        kms_http_log_dropped = 0;
        kms_http_log_start = now;
        kms_http_log_count = 0;
    }
    emit = kms_http_log_count < KMS_HTTP_LOG_BURST;
    if (emit)
        kms_http_log_count++;
    else
        kms_http_log_dropped++;
    pthread_mutex_unlock(&kms_http_log_mu);
    if (dropped > 0)
        kms_log_warn("http: %lu more libmicrohttpd messages were suppressed", dropped);
    if (!emit)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    kms_log_warn("http: %s", msg);
}

/* Once a graceful stop has begun, a new connection is closed as soon as it is accepted. */
static enum MHD_Result kms_http_accept_policy(void *cls, const struct sockaddr *addr,
                                              socklen_t addrlen)
{
    const struct kms_server *srv = cls;

    return atomic_load(&srv->srv_draining) ? MHD_NO : MHD_YES;
}

static void *kms_http_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct kms_server *srv = cls;
    struct kms_http_req *r = malloc(sizeof(*r));

    if (r == NULL)
        return NULL;
    memset(r, 0, offsetof(struct kms_http_req, hr_headers));
    atomic_fetch_add(&srv->srv_in_flight, 1);
    r->hr_refused = atomic_load(&srv->srv_refusing);
    r->hr_uri_len = strlen(uri);
    if (r->hr_uri_len > srv->srv_cfg->max_url_bytes)
        r->hr_too_large = true;
    else
        r->hr_uri = kms_strndup(uri, r->hr_uri_len);
    return r;
}

static void kms_http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                               enum MHD_RequestTerminationCode toe)
{
    struct kms_server *srv = cls;

    if (*con_cls != NULL)
        atomic_fetch_sub(&srv->srv_in_flight, 1);
    kms_http_req_free(*con_cls);
    *con_cls = NULL;
}

static enum MHD_Result kms_http_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    size_t *total = cls;

    *total += strlen(key) + (value ? strlen(value) : 0) + 2;
    return MHD_YES;
}

static enum MHD_Result kms_http_collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                               const char *value)
{
    struct kms_http_req *r = cls;
    size_t name_len = strlen(key), value_len = value ? strlen(value) : 0;
    struct kms_header *h;
    char *text;

    if (r->hr_header_count == KMS_HTTP_MAX_HEADERS) {
        r->hr_too_large = true;
        return MHD_NO;
    }
    /* kms_http_headers sized hr_text for every header: this cannot run past it. */
    text = r->hr_text + r->hr_text_used;
    r->hr_text_used += name_len + value_len + 2;
    h = &r->hr_headers[r->hr_header_count];
    h->name = text;
    for (size_t i = 0; i < name_len; i++) {
        char c = key[i];

        text[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    text[name_len] = '\0';
    h->value = text + name_len + 1;
    if (value_len > 0)
        memcpy(h->value, value, value_len);
    h->value[value_len] = '\0';
    r->hr_header_count++;
    return MHD_YES;
}

/*
 * Copies every header into the request (api/ keeps no pointer into libmicrohttpd): the text is
 * measured first, so one block holds it all, and a usual request needs no allocation.
 */
static bool kms_http_headers(struct MHD_Connection *conn, struct kms_http_req *r)
{
    size_t total = 0;

    MHD_get_connection_values(conn, MHD_HEADER_KIND, kms_http_header_size, &total);
    r->hr_text = r->hr_inline;
    if (total > sizeof(r->hr_inline)) {
        r->hr_spill = malloc(total);
        if (r->hr_spill == NULL)
            return false;
        r->hr_text = r->hr_spill;
    }
    MHD_get_connection_values(conn, MHD_HEADER_KIND, kms_http_collect_header, r);
    return true;
}

static const char *kms_http_req_header(const struct kms_http_req *r, const char *name)
{
    for (size_t i = 0; i < r->hr_header_count; i++)
        if (strcmp(r->hr_headers[i].name, name) == 0)
            return r->hr_headers[i].value;
    return NULL;
}

/*
 * Leaves URI escapes as they are: kmsd parses the raw URI itself (request.c), so decoding the
 * path and every parameter again inside libmicrohttpd would be work thrown away.
 */
static size_t kms_http_unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
    return strlen(s);
}

/* Dotted quad of a[0..3] into out (16 bytes at least): inet_ntop goes through sprintf. */
static void kms_http_ipv4(const uint8_t *a, char *out)
{
    char *o = out;

    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];

        if (i > 0)
            *o++ = '.';
        if (v >= 100)
            *o++ = (char)('0' + v / 100);
        if (v >= 10)
            *o++ = (char)('0' + v / 10 % 10);
        *o++ = (char)('0' + v % 10);
    }
    *o = '\0';
}

static void kms_http_peer(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info ? info->client_addr : NULL;

    if (size < INET6_ADDRSTRLEN) {
        if (size > 0)
            out[0] = '\0';
        return;
    }
    memcpy(out, "unknown", sizeof("unknown"));
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        kms_http_ipv4((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr, out);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        /* ::ffff:a.b.c.d is the IPv4 peer a.b.c.d (network rules compare it so). */
        if (IN6_IS_ADDR_V4MAPPED(a))
            kms_http_ipv4(&a->s6_addr[12], out);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)size);
    }
}

/*
 * Frees a response body once libmicrohttpd has sent it. The body may carry plaintext or a data
 * key: the whole allocation is wiped, whatever part of it the rendering used.
 */
static void kms_http_body_free(void *p)
{
    OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}

/* Queues the response; libmicrohttpd takes resp->body (no copy) and frees it when sent. */
static enum MHD_Result kms_http_send(const struct kms_server *srv, struct MHD_Connection *conn,
                                     struct kms_response *resp)
{
    static char empty[1];
    struct MHD_Response *mr;
    enum MHD_Result ret;

    if (resp->body != NULL)
        mr = MHD_create_response_from_buffer_with_free_callback(resp->body_len, resp->body,
                                                                kms_http_body_free);
    else
        mr = MHD_create_response_from_buffer(0, empty, MHD_RESPMEM_PERSISTENT);
    if (mr == NULL)
        return MHD_NO;
    resp->body = NULL; /* libmicrohttpd's now */
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    MHD_add_response_header(mr, "x-acs-request-id", resp->request_id);
    /* Stopping: the client should take its next request elsewhere (or to the restarted kmsd). */
    if (atomic_load_explicit(&srv->srv_draining, memory_order_relaxed))
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
    ret = MHD_queue_response(conn, (unsigned int)resp->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

/* Hands the request to api/ and queues its answer. */
static enum MHD_Result kms_http_respond(const struct kms_server *srv, struct MHD_Connection *conn,
                                        struct kms_http_req *r, const char *method)
{
    struct kms_request req;
    struct kms_response resp;
    enum MHD_Result ret;
    char *query, *path;

    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    path = r->hr_uri ? r->hr_uri : (char *)"/";
    query = strchr(path, '?');
    if (query != NULL)
        *query++ = '\0';
    req.method = method;
    req.path = path;
    req.query = query ? query : "";
    req.query_len = strlen(req.query);
    req.body = (const unsigned char *)r->hr_body.data;
    req.body_len = r->hr_body.len;
    req.headers = r->hr_headers;
    req.header_count = r->hr_header_count;
    req.too_large = r->hr_too_large;
    kms_http_peer(conn, req.peer_ip, sizeof(req.peer_ip));
    kms_api_serve(&req, &resp);
    ret = kms_http_send(srv, conn, &resp);
    if (resp.body != NULL)
        kms_http_body_free(resp.body); /* not handed over */
    return ret;
}

static enum MHD_Result kms_http_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **con_cls)
{
    const struct kms_server *srv = cls;
    struct kms_http_req *r = *con_cls;

    if (r == NULL || r->hr_refused)
        return MHD_NO;
    if (!r->hr_started) {
        const char *length;

        r->hr_started = true;
        if (!kms_http_headers(conn, r))
            return MHD_NO;
        length = kms_http_req_header(r, "content-length");
        if (length != NULL && strtoull(length, NULL, 10) > srv->srv_cfg->max_body_bytes)
            r->hr_too_large = true;
        /*
         * Too large before the body: answer at once, without reading (or waiting for) a body we
         * would drop. MHD then closes the connection, since the body was never consumed.
         */
        if (r->hr_too_large)
            return kms_http_respond(srv, conn, r, method);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /*
         * A chunked body past the limit: the rest is read and dropped, then answered with one
         * clear error (MHD allows no response until the request is complete).
         */
        if (!r->hr_too_large) {
            if (r->hr_body.len + *upload_data_size > srv->srv_cfg->max_body_bytes) {
                r->hr_too_large = true;
                kms_buf_free_secret(&r->hr_body);
            } else if (kms_buf_append(&r->hr_body, upload_data, *upload_data_size) != KMS_OK) {
                return MHD_NO;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return kms_http_respond(srv, conn, r, method);
}

static bool kms_http_bind_address(const struct kms_config *cfg, struct sockaddr_storage *ss,
                                  bool *ipv6)
{
    struct addrinfo hints, *res = NULL;
    char port[16];

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof(port), "%d", cfg->listen_port);
    if (getaddrinfo(cfg->listen_host, port, &hints, &res) != 0 || res == NULL)
        return false;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *ipv6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return true;
}

kms_err kms_server_start(const struct kms_config *cfg, struct kms_server **out, int *port_out)
{
    struct kms_server *srv = calloc(1, sizeof(*srv));
    struct sockaddr_storage ss;
    unsigned int flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    const union MHD_DaemonInfo *info;
    struct MHD_OptionItem opts[16];
    int n = 0;
    bool ipv6 = false;

    if (srv == NULL)
        return KMS_E_INTERNAL;
    srv->srv_cfg = cfg;
    if (!kms_http_bind_address(cfg, &ss, &ipv6)) {
        kms_log_error("http: cannot resolve listen address %s", cfg->listen_host);
        free(srv);
        return KMS_E_INTERNAL;
    }
    if (ipv6)
        flags |= MHD_USE_IPv6;
    /* First, or libmicrohttpd prints what the options before it say on its own. */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)kms_http_log, NULL};
    if (!cfg->insecure_plain_http) {
        flags |= MHD_USE_TLS;
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, kms_tls_callback()};
        opts[n++] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)cfg->tls_priorities};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)cfg->threads, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, NULL};
    if (cfg->max_connections_per_ip > 0)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                            cfg->max_connections_per_ip, NULL};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout, NULL};
    /*
     * Room for the longest request line the SDKs send (all parameters in the URL) and the
     * headers, and no more: libmicrohttpd 0.9.75 zeroes the whole pool after every request (and
     * half of it again when it shrinks the read buffer), so its size is paid on each one. A
     * request line up to max_url_bytes is served, one a little longer gets our JSON RequestSize
     * error, a longer one libmicrohttpd's own 414 (spec/protocol.md §1 allows it when the
     * parser cannot continue; tests/integration/test_request_size.py, docs/architecture.md).
     */
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                (intptr_t)(cfg->max_url_bytes + KMS_HTTP_HEADER_ALLOWANCE), NULL};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)kms_http_uri_cb, srv};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)kms_http_completed, srv};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_UNESCAPE_CALLBACK,
                                        (intptr_t)kms_http_unescape_none, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    srv->srv_daemon = MHD_start_daemon(flags, 0, kms_http_accept_policy, srv, kms_http_handler, srv,
                                       MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (srv->srv_daemon == NULL) {
        kms_log_error("http: cannot listen on %s:%d", cfg->listen_host, cfg->listen_port);
        kms_server_stop(srv);
        return KMS_E_INTERNAL;
    }
    info = MHD_get_daemon_info(srv->srv_daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = info ? info->port : cfg->listen_port;
    *out = srv;
    return KMS_OK;
}

void kms_server_stop(struct kms_server *srv)
{
    if (srv == NULL)
        return;
    /* Closes every connection; a request already inside its handler completes first. */
    if (srv->srv_daemon != NULL)
        MHD_stop_daemon(srv->srv_daemon);
    free(srv);
}

void kms_server_shutdown(struct kms_server *srv, int timeout_s, bool (*abort_early)(void),
                         unsigned *cut)
{
    struct timespec start, now, pause = {0, KMS_HTTP_DRAIN_POLL_MS * 1000000L};

    *cut = 0;
    if (srv == NULL)
        return;
    /* No new connections from here on: the accept policy closes each one at once. */
    atomic_store(&srv->srv_draining, true);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        unsigned in_flight = atomic_load(&srv->srv_in_flight);

        clock_gettime(CLOCK_MONOTONIC, &now);
        if (in_flight == 0 && atomic_load(&srv->srv_refusing))
            break;
        if (in_flight == 0) {
            /*
             * Nothing under way: from now on a request that starts on a kept-alive connection is
             * closed unanswered. One that started just before is waited for by the next rounds.
             */
            atomic_store(&srv->srv_refusing, true);
            continue;
        }
        if (now.tv_sec - start.tv_sec >= timeout_s || (abort_early != NULL && abort_early())) {
            *cut = in_flight;
            break;
        }
        nanosleep(&pause, NULL);
    }
    atomic_store(&srv->srv_refusing, true);
    kms_server_stop(srv);
}
