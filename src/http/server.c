/*
 * server.c - the HTTPS front end on libmicrohttpd's thread pool: TLS, connection limits, the raw
 * request (URI, headers, body) handed to api/, and the response sent back.
 *
 * The raw URI comes from MHD's URI log callback, before MHD decodes anything: parameters are
 * decoded once, by request.c, and the signature checks re-encode them from decoded values.
 *
 * TLS: the certificate comes from tls.c through GnuTLS's retrieve callback, so SIGHUP can replace
 * it under a running listener. Stopping (SIGTERM): MHD_quiesce_daemon closes the door (it needs
 * MHD_USE_ITC), requests already under way are counted from their request line to their
 * completion and waited for, then the daemon stops (kms_server_shutdown).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "kms/api.h"
#include "kms/config.h"
#include "kms/http.h"
#include "kms/log.h"

/* Headers beyond the request line take a little memory of their own in MHD's pool. */
#define KMS_HTTP_HEADER_ALLOWANCE (64 * 1024)
#define KMS_HTTP_MAX_HEADERS      64

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
    bool hr_started;
    bool hr_too_large;
    bool hr_refused; /* arrived after the graceful stop's wait: closed unanswered */
    struct kms_buf hr_body;
    struct kms_header hr_headers[KMS_HTTP_MAX_HEADERS];
    size_t hr_header_count;
};

/* A response body that remembers its length, so the free callback can wipe it. */
struct kms_http_body {
    size_t hb_len;
    char hb_data[];
};

static void kms_http_req_free(struct kms_http_req *r)
{
    if (r == NULL)
        return;
    free(r->hr_uri);
    kms_buf_free_secret(&r->hr_body);
    for (size_t i = 0; i < r->hr_header_count; i++) {
        free(r->hr_headers[i].name);
        free(r->hr_headers[i].value);
    }
    free(r);
}

static void *kms_http_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct kms_server *srv = cls;
    struct kms_http_req *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    atomic_fetch_add(&srv->srv_in_flight, 1);
    r->hr_refused = atomic_load(&srv->srv_refusing);
    if (strlen(uri) > srv->srv_cfg->max_url_bytes)
        r->hr_too_large = true;
    else
        r->hr_uri = strdup(uri);
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

static enum MHD_Result kms_http_collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                               const char *value)
{
    struct kms_http_req *r = cls;
    struct kms_header *h;

    if (r->hr_header_count == KMS_HTTP_MAX_HEADERS) {
        r->hr_too_large = true;
        return MHD_NO;
    }
    h = &r->hr_headers[r->hr_header_count];
    h->name = strdup(key);
    h->value = strdup(value ? value : "");
    if (h->name == NULL || h->value == NULL) {
        free(h->name);
        free(h->value);
        return MHD_NO;
    }
    for (char *p = h->name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    r->hr_header_count++;
    return MHD_YES;
}

static void kms_http_peer(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info ? info->client_addr : NULL;

    snprintf(out, size, "unknown");
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        /* ::ffff:a.b.c.d is the IPv4 peer a.b.c.d (network rules compare it so). */
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)size);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)size);
    }
}

static void kms_http_body_free(void *p)
{
    struct kms_http_body *b =
        (struct kms_http_body *)((char *)p - offsetof(struct kms_http_body, hb_data));

    OPENSSL_cleanse(b->hb_data, b->hb_len);
    free(b);
}

static enum MHD_Result kms_http_send(const struct kms_server *srv, struct MHD_Connection *conn,
                                     struct kms_response *resp)
{
    struct kms_http_body *b = malloc(sizeof(*b) + resp->body_len + 1);
    struct MHD_Response *mr;
    enum MHD_Result ret;

    if (b == NULL)
        return MHD_NO;
    b->hb_len = resp->body_len;
    memcpy(b->hb_data, resp->body, resp->body_len);
    mr = MHD_create_response_from_buffer_with_free_callback(resp->body_len, b->hb_data,
                                                            kms_http_body_free);
    if (mr == NULL) {
        kms_http_body_free(b->hb_data);
        return MHD_NO;
    }
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
        OPENSSL_cleanse(resp.body, resp.body_len);
    free(resp.body);
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
        MHD_get_connection_values(conn, MHD_HEADER_KIND, kms_http_collect_header, r);
        length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
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
     * headers, and no more: libmicrohttpd zeroes the whole pool after every request, so its
     * size is paid on each one (twice the URL limit cost 12 us of CPU per Encrypt). A request
     * line up to max_url_bytes is served, one up to about max_url_bytes + 60 KiB gets our JSON
     * RequestSize error, a longer one libmicrohttpd's own 414 (tests/integration/
     * test_request_size.py).
     */
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                (intptr_t)(cfg->max_url_bytes + KMS_HTTP_HEADER_ALLOWANCE), NULL};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)kms_http_uri_cb, srv};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)kms_http_completed, srv};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    srv->srv_daemon = MHD_start_daemon(flags, 0, NULL, NULL, kms_http_handler, srv,
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
    MHD_socket listener;

    *cut = 0;
    if (srv == NULL)
        return;
    atomic_store(&srv->srv_draining, true);
    /*
     * No new connections from here on. The socket is ours to close, after the stop (a worker may
     * still hold it until then); shutting it down now makes new clients get a refusal at once
     * rather than wait in the kernel's backlog until we exit.
     */
    listener = MHD_quiesce_daemon(srv->srv_daemon);
    if (listener != MHD_INVALID_SOCKET)
        shutdown(listener, SHUT_RDWR);
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
    if (listener != MHD_INVALID_SOCKET)
        close(listener);
}
