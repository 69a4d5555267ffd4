/*
 * admin.c - the operators' listener ([admin] listen): GET /healthz answers 200 "ok" when the
 * store and the keystores answer and 503 with the reason otherwise; GET /metrics answers the
 * Prometheus text exposition (src/metrics/). Nothing else is served there, and no API action:
 * the API listener never serves these paths either.
 *
 * It is a small libmicrohttpd daemon of its own (one thread, a few connections), so a scrape
 * never waits behind API traffic and API workers never serve scrapes. Plain HTTP is accepted on
 * loopback addresses only; anything else needs [admin] tls = true (the API's certificate).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "kms/config.h"
#include "kms/http.h"
#include "kms/log.h"
#include "kms/metrics.h"

#define KMS_ADMIN_CONNECTIONS 16
#define KMS_ADMIN_TIMEOUT     10 /* seconds */

struct kms_admin {
    struct MHD_Daemon *adm_daemon;
};

static enum MHD_Result kms_admin_send(struct MHD_Connection *conn, unsigned int status,
                                      const char *type, struct kms_buf *body)
{
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        body->len, body->data ? body->data : (void *)"", MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (mr == NULL)
        return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(conn, status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result kms_admin_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                         const char *method, const char *version,
                                         const char *upload_data, size_t *upload_data_size,
                                         void **con_cls)
{
    static int started;
    struct kms_buf body = {0};
    unsigned int status = MHD_HTTP_OK;
    const char *type = "text/plain; charset=utf-8";
    enum MHD_Result ret;

    /* The first call only announces the request; answer on the second (no body is read). */
    if (*con_cls == NULL) {
        *con_cls = &started;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        kms_buf_append_str(&body, "method not allowed\n");
    } else if (strcmp(url, "/healthz") == 0) {
        char why[256];

        if (kms_health_check(why, sizeof(why)) != KMS_OK) {
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
            kms_log_warn("admin: /healthz: %s", why);
        }
        kms_buf_printf(&body, "%s\n", why);
    } else if (strcmp(url, "/metrics") == 0) {
        type = "text/plain; version=0.0.4; charset=utf-8";
        if (kms_metrics_render(&body) != KMS_OK) {
            kms_buf_reset(&body);
            status = MHD_HTTP_INTERNAL_SERVER_ERROR;
            type = "text/plain; charset=utf-8";
            kms_buf_append_str(&body, "cannot render the metrics\n");
        }
    } else {
        status = MHD_HTTP_NOT_FOUND;
        kms_buf_append_str(&body, "not found: /healthz and /metrics are served here\n");
    }
    ret = kms_admin_send(conn, status, type, &body);
    kms_buf_free(&body);
    return ret;
}

/* Whether the address is a loopback one (127.0.0.0/8, ::1, ::ffff:127.x.y.z). */
static bool kms_admin_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

kms_err kms_admin_start(const struct kms_config *cfg, struct kms_admin **out, int *port_out)
{
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    char host[KMS_CONFIG_STR], portstr[16];
    const union MHD_DaemonInfo *info;
    struct kms_admin *admin;
    int port = 0;

    *out = NULL;
    if (cfg->admin_listen[0] == '\0')
        return KMS_OK;
    if (!kms_config_parse_hostport(cfg->admin_listen, host, sizeof(host), &port))
        return KMS_E_INTERNAL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%d", port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || res == NULL) {
        kms_log_error("admin: cannot resolve listen address %s", host);
        return KMS_E_INTERNAL;
    }
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (!cfg->admin_tls && !kms_admin_loopback((struct sockaddr *)&ss)) {
        kms_log_error("admin: listen = %s is not a loopback address: serving /metrics and "
                      "/healthz there needs [admin] tls = true",
                      cfg->admin_listen);
        return KMS_E_INVALID_PARAMETER;
    }
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    admin = calloc(1, sizeof(*admin));
    if (admin == NULL)
        return KMS_E_INTERNAL;
    if (cfg->admin_tls)
        admin->adm_daemon = MHD_start_daemon(
            flags | MHD_USE_TLS, 0, NULL, NULL, kms_admin_handler, NULL, MHD_OPTION_SOCK_ADDR, &ss,
            MHD_OPTION_HTTPS_CERT_CALLBACK, kms_tls_callback(), MHD_OPTION_HTTPS_PRIORITIES,
            cfg->tls_priorities, MHD_OPTION_CONNECTION_LIMIT, KMS_ADMIN_CONNECTIONS,
            MHD_OPTION_CONNECTION_TIMEOUT, KMS_ADMIN_TIMEOUT, MHD_OPTION_END);
    else
        admin->adm_daemon =
            MHD_start_daemon(flags, 0, NULL, NULL, kms_admin_handler, NULL, MHD_OPTION_SOCK_ADDR,
                             &ss, MHD_OPTION_CONNECTION_LIMIT, KMS_ADMIN_CONNECTIONS,
                             MHD_OPTION_CONNECTION_TIMEOUT, KMS_ADMIN_TIMEOUT, MHD_OPTION_END);
    if (admin->adm_daemon == NULL) {
        kms_log_error("admin: cannot listen on %s", cfg->admin_listen);
        free(admin);
        return KMS_E_INTERNAL;
    }
    info = MHD_get_daemon_info(admin->adm_daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = info ? info->port : port;
    *out = admin;
    return KMS_OK;
}

void kms_admin_stop(struct kms_admin *admin)
{
    if (admin == NULL)
        return;
    MHD_stop_daemon(admin->adm_daemon);
    free(admin);
}
