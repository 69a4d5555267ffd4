/*
 * kms-load.c - the load generator of bench/: signs every request the way Alibaba's Node SDK
 * (@alicloud/kms20160120 over @alicloud/rpc-client) does and keeps N keep-alive TLS 1.3
 * connections busy, one request in flight on each, for a fixed time or request count.
 *
 *   kms-load --endpoint 127.0.0.1:8443 --action Encrypt --key-id KEY [--plaintext-size 32]
 *            [--connections 32] [--threads 2] [--duration 10] [--warmup 2] [--server-pid PID]
 *   kms-load --endpoint ... --mix Encrypt:4 --mix DescribeKey:1 --key-id KEY [--param ...]
 *
 * With --mix the connections send several actions in the given proportions (one schedule of
 * weighted slots, interleaved, that every thread walks from its own offset), and the report adds
 * a row per action. --param NAME=VALUE applies to every action, --param ACTION:NAME=VALUE to
 * that one only.
 *
 * Each request is what the SDK sends: POST /?<every parameter> with an empty body, a fresh
 * Timestamp and 32-hex SignatureNonce, and a signature V1 (HMAC-SHA1) computed with the
 * project's own signer (src/auth/canonical.c, sig_v1.c), so a server that answers 200 really
 * verified it. The same requests can be aimed at a server that ignores them (the nginx baseline
 * of bench/run.sh): only the answer differs.
 *
 * It reports requests per second, latency percentiles, errors (any status but 200; the first
 * is printed with its body) and, given --server-pid, the server's CPU time per request from
 * /proc/<pid>/stat (utime + stime, the process and its direct children, before and after).
 * The last line of the report is "result key=value ..." for scripts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "kms/auth.h"
#include "kms/crypto.h"
#include "kms/http.h"
#include "kms/util.h"

#define KMS_LOAD_EXIT_USAGE   2
#define KMS_LOAD_MAX_PARAMS   48  /* one action's --param plus the nine the SDK adds */
#define KMS_LOAD_MAX_ARGS     256 /* --param options in all */
#define KMS_LOAD_MAX_ACTIONS  16
#define KMS_LOAD_MAX_WEIGHT   1000
#define KMS_LOAD_MAX_PIDS     256
#define KMS_LOAD_NONCE_BYTES  16 /* 32 hex digits, as kitx.makeNonce gives */
#define KMS_LOAD_RESPONSE_MAX (4 * 1024 * 1024)
#define KMS_LOAD_USER_AGENT                                                                        \
    "AlibabaCloud (linux; x64) Node.js/v20.0.0 Core/1.0.1 TeaDSL/2 kms-load/" KMSD_VERSION

/*
 * Latency histogram of nanoseconds: exact below 256, then 128 sub-buckets per power of two
 * (under 0.8 % error), up to 2^63. Fixed size, so threads never allocate while measuring.
 */
#define KMS_LOAD_HIST_SUB     128
#define KMS_LOAD_HIST_BUCKETS (256 + 56 * KMS_LOAD_HIST_SUB)

enum kms_load_phase {
    KMS_LOAD_WARMUP = 0,
    KMS_LOAD_MEASURE = 1,
    KMS_LOAD_STOP = 2,
};

enum kms_load_conn_state {
    KMS_LOAD_SEND,
    KMS_LOAD_RECV,
    KMS_LOAD_IDLE, /* nothing more to send (request budget spent or stopping) */
    KMS_LOAD_DEAD, /* could not reconnect */
};

/* One action of the load: its name, its share of the requests and its own parameters. */
struct kms_load_action {
    const char *la_name;
    unsigned la_weight;
    const char *la_names[KMS_LOAD_MAX_PARAMS]; /* in the order given */
    const char *la_values[KMS_LOAD_MAX_PARAMS];
    size_t la_nparams;
    char *la_blob; /* Decrypt's CiphertextBlob when kms-load made it */
};

/* What one thread measured for one action. */
struct kms_load_stats {
    uint64_t ls_hist[KMS_LOAD_HIST_BUCKETS];
    uint64_t ls_done;      /* requests completed and counted */
    uint64_t ls_errors;    /* counted requests that did not answer 200 */
    uint64_t ls_io_errors; /* connections lost mid-request (any phase) */
    uint64_t ls_max_ns;
};

struct kms_load_opts {
    const char *host;
    const char *port;
    const char *host_header; /* host:port as the SDK sends it */
    const char *id;
    const char *secret;
    const char *cacert;
    const char *label;
    struct kms_load_action actions[KMS_LOAD_MAX_ACTIONS];
    size_t nactions;
    uint8_t *schedule; /* an action index per slot, each action in la_weight slots, interleaved */
    size_t schedule_len;
    int connections;
    int threads;
    double duration;
    double warmup;
    uint64_t requests; /* 0: run for duration */
    pid_t pids[KMS_LOAD_MAX_PIDS];
    size_t npids;
    bool once;
};

struct kms_load_thread;

struct kms_load_conn {
    int lc_fd;
    SSL *lc_ssl;
    enum kms_load_conn_state lc_state;
    uint32_t lc_events; /* what epoll watches for this connection now */
    struct kms_buf lc_req;
    size_t lc_req_off;
    char *lc_resp;
    size_t lc_resp_len;
    size_t lc_resp_cap;
    size_t lc_head_len; /* bytes of the status line and headers, 0 until complete */
    long long lc_content_length;
    bool lc_chunked;
    bool lc_close;
    int lc_status;
    uint64_t lc_started;                  /* ns, monotonic */
    bool lc_counted;                      /* issued while measuring: its latency is recorded */
    const struct kms_load_action *lc_act; /* what the request in flight is */
    struct kms_load_thread *lc_thread;
};

struct kms_load_thread {
    pthread_t lt_tid;
    int lt_epfd;
    struct kms_load_conn *lt_conns;
    size_t lt_nconns;
    struct kms_load_stats *lt_stats; /* one per action */
    size_t lt_next;                  /* the next slot of the schedule */
    uint64_t lt_reconnects;          /* connections the server closed and we reopened */
    struct kms_buf lt_sts;
};

static struct kms_load_opts kms_load_opt;
static SSL_CTX *kms_load_ctx;
static struct addrinfo *kms_load_addr;
static _Atomic int kms_load_phase;
static atomic_ullong kms_load_issued; /* counted requests issued (--requests) */
static atomic_flag kms_load_error_shown = ATOMIC_FLAG_INIT;
static atomic_flag kms_load_io_error_shown = ATOMIC_FLAG_INIT;
static pthread_mutex_t kms_load_print_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- small helpers ---- */

static uint64_t kms_load_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void kms_load_usage(FILE *to)
{
    fputs(
        "usage: kms-load --endpoint HOST:PORT [options]\n"
        "\n"
        "Sends signature-V1 (HMAC-SHA1) requests shaped like Alibaba's Node SDK (POST /?<params>,\n"
        "empty body, fresh Timestamp and SignatureNonce) over keep-alive TLS 1.3 connections, one\n"
        "request in flight per connection, and reports requests/s, latency and errors.\n"
        "\n"
        "  --endpoint HOST:PORT   the server (TLS 1.3 only; certificates are not verified unless\n"
        "                         --cacert is given)\n"
        "  -a, --action NAME      Encrypt (default), Decrypt, GenerateDataKey or any action\n"
        "  --mix NAME[:WEIGHT]    instead of --action: a mixed load, repeatable; each action gets\n"
        "                         WEIGHT (default 1, up to 1000) slots of the request schedule\n"
        "  --key-id ID            KeyId parameter of every action but Decrypt and the *Secret*\n"
        "                         ones (Decrypt without a CiphertextBlob uses it to make one)\n"
        "  --plaintext-size N     Encrypt: N random bytes of Plaintext (default 32, up to 6144)\n"
        "  --param NAME=VALUE     any further parameter, repeatable (plain text, not encoded);\n"
        "                         ACTION:NAME=VALUE gives it to that action of the load only\n"
        "  -c, --connections N    keep-alive connections (default 32)\n"
        "  -t, --threads N        client threads sharing them (default 2)\n"
        "  -d, --duration SECONDS measured time (default 10; a trailing \"s\" is allowed)\n"
        "  -n, --requests N       measure N requests instead of a duration\n"
        "  -w, --warmup SECONDS   unmeasured load before measuring (default 2)\n"
        "  --server-pid PID       report this process's CPU time per request (with its direct\n"
        "                         children, e.g. nginx workers); repeatable\n"
        "  --once                 send one request, print the status and body, exit 0 on 200\n"
        "  --label TEXT           a name for this run in the result line\n"
        "  --cacert FILE          verify the server's certificate against FILE\n"
        "  --access-key-id ID     default: $KMS_ACCESS_KEY_ID\n"
        "  --access-key-secret S  default: $KMS_ACCESS_KEY_SECRET (prefer the variable)\n"
        "\n"
        "The last line is: result label=... action=... requests=... rps=... p50_ms=... p90_ms=...\n"
        "p99_ms=... max_ms=... errors=... io_errors=... server_cpu_us=... client_cpu_us=...\n"
        "server_system_us=... (the system part of server_cpu_us; -1 without --server-pid)\n"
        "(action=mix for a mixed load, which first prints a line per action: result_action\n"
        "label=... action=... requests=... rps=... p50_ms=... p90_ms=... p99_ms=... max_ms=...\n"
        "errors=... io_errors=...).\n",
        to);
}

static int kms_load_fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int kms_load_fail_usage(const char *fmt, ...)
{
    va_list ap;

    fputs("kms-load: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(kms-load --help for usage)\n", stderr);
    return KMS_LOAD_EXIT_USAGE;
}

static bool kms_load_parse_double(const char *s, double min, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end != s && *end == 's') /* "10s", as wrk takes it */
        end++;
    if (errno != 0 || end == s || *end != '\0' || !(v >= min))
        return false;
    *out = v;
    return true;
}

static bool kms_load_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* ---- the histogram ---- */

static size_t kms_load_hist_index(uint64_t ns)
{
    unsigned msb;
    unsigned shift;

    if (ns < 256)
        return (size_t)ns;
    msb = 63u - (unsigned)__builtin_clzll(ns);
    shift = msb - 7u;
    return 256 + (size_t)(shift - 1) * KMS_LOAD_HIST_SUB + (size_t)((ns >> shift) - 128);
}

/* The middle of bucket i, in ns. */
static double kms_load_hist_value(size_t i)
{
    size_t shift, sub;

    if (i < 256)
        return (double)i;
    shift = (i - 256) / KMS_LOAD_HIST_SUB + 1;
    sub = (i - 256) % KMS_LOAD_HIST_SUB + 128;
    return ((double)sub + 0.5) * (double)(1ULL << shift);
}

static double kms_load_hist_percentile(const uint64_t *hist, uint64_t total, double pct)
{
    uint64_t rank = (uint64_t)((double)total * pct / 100.0);
    uint64_t seen = 0;

    if (total == 0)
        return 0;
    if (rank >= total)
        rank = total - 1;
    for (size_t i = 0; i < KMS_LOAD_HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen > rank)
            return kms_load_hist_value(i);
    }
    return 0;
}

/* ---- server CPU from /proc ---- */

/* A server's CPU time in clock ticks: user (utime) and system (stime, the kernel for it). */
struct kms_load_ticks {
    unsigned long long lk_user;
    unsigned long long lk_system;
};

/* utime and stime of pid in clock ticks, and its parent; false if it is gone. */
static bool kms_load_proc_stat(pid_t pid, struct kms_load_ticks *ticks, pid_t *ppid)
{
    char path[64], buf[1024];
    unsigned long long utime = 0, stime = 0;
    const char *p;
    FILE *f;
    size_t n;
    int parent = 0;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields resume after the last ')'. */
    p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    /* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 1, " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &parent, &utime,
               &stime) != 3)
        return false;
    ticks->lk_user = utime;
    ticks->lk_system = stime;
    if (ppid != NULL)
        *ppid = (pid_t)parent;
    return true;
}

/* Adds the direct children of every pid given to the list (nginx's workers under its master). */
static void kms_load_add_children(struct kms_load_opts *o)
{
    size_t given = o->npids;
    DIR *d = opendir("/proc");
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL && o->npids < KMS_LOAD_MAX_PIDS) {
        struct kms_load_ticks ticks;
        pid_t pid, ppid = 0;
        char *end = NULL;
        long v = strtol(e->d_name, &end, 10);

        if (end == e->d_name || *end != '\0' || v <= 0)
            continue;
        pid = (pid_t)v;
        if (!kms_load_proc_stat(pid, &ticks, &ppid))
            continue;
        for (size_t i = 0; i < given; i++)
            if (ppid == o->pids[i]) {
                o->pids[o->npids++] = pid;
                break;
            }
    }
    closedir(d);
}

static struct kms_load_ticks kms_load_server_ticks(const struct kms_load_opts *o)
{
    struct kms_load_ticks sum = {0, 0};

    for (size_t i = 0; i < o->npids; i++) {
        struct kms_load_ticks t;

        if (kms_load_proc_stat(o->pids[i], &t, NULL)) {
            sum.lk_user += t.lk_user;
            sum.lk_system += t.lk_system;
        }
    }
    return sum;
}

static double kms_load_self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- building a signed request ---- */

/* The SDK's Timestamp (UTC, whole seconds), formatted once per second per thread. */
static void kms_load_timestamp(char out[KMS_TIME_LEN])
{
    static _Thread_local time_t last = -1;
    static _Thread_local char text[KMS_TIME_LEN];
    time_t now = time(NULL);

    if (now != last) {
        kms_time_format(now, text);
        last = now;
    }
    memcpy(out, text, KMS_TIME_LEN);
}

/* Appends name=percentEncode(value) (with a leading "&" unless first) to q. */
static kms_err kms_load_add_query(struct kms_buf *q, const char *name, const char *value)
{
    kms_err rc = KMS_OK;

    if (q->len > 0)
        rc = kms_buf_append_char(q, '&');
    if (rc == KMS_OK)
        rc = kms_percent_encode(q, name, strlen(name));
    if (rc == KMS_OK)
        rc = kms_buf_append_char(q, '=');
    if (rc == KMS_OK)
        rc = kms_percent_encode(q, value, strlen(value));
    return rc;
}

/*
 * Replaces out with a complete HTTP request: the SDK's parameters in the SDK's order (Action,
 * Format, Timestamp, Version, SignatureNonce, the action's own, SignatureMethod,
 * SignatureVersion, AccessKeyId, Signature), signed by the server's own V1 code.
 */
static kms_err kms_load_build(const struct kms_load_opts *o, const struct kms_load_action *a,
                              struct kms_buf *sts, struct kms_buf *out)
{
    struct kms_param items[KMS_LOAD_MAX_PARAMS + 9], sorted[KMS_LOAD_MAX_PARAMS + 9];
    struct kms_params params = {0};
    char timestamp[KMS_TIME_LEN], nonce[2 * KMS_LOAD_NONCE_BYTES + 1];
    char sig[KMS_SIG_V1_LEN + 1];
    uint8_t nonce_bytes[KMS_LOAD_NONCE_BYTES];
    const char *dup = NULL;
    struct kms_buf q = {0};
    size_t n = 0;
    kms_err rc;

    kms_load_timestamp(timestamp);
    if (RAND_bytes(nonce_bytes, sizeof(nonce_bytes)) != 1)
        return KMS_E_INTERNAL;
    kms_hex_encode(nonce_bytes, sizeof(nonce_bytes), nonce);

#define KMS_LOAD_ITEM(n_, v_)                                                                      \
    items[n++] = (struct kms_param){.name = (char *)(n_),                                          \
                                    .name_len = strlen(n_),                                        \
                                    .value = (char *)(v_),                                         \
                                    .value_len = strlen(v_),                                       \
                                    .source = KMS_PARAM_QUERY}
    KMS_LOAD_ITEM("Action", a->la_name);
    KMS_LOAD_ITEM("Format", "json");
    KMS_LOAD_ITEM("Timestamp", timestamp);
    KMS_LOAD_ITEM("Version", "2016-01-20");
    KMS_LOAD_ITEM("SignatureNonce", nonce);
    for (size_t i = 0; i < a->la_nparams; i++)
        KMS_LOAD_ITEM(a->la_names[i], a->la_values[i]);
    KMS_LOAD_ITEM("SignatureMethod", "HMAC-SHA1");
    KMS_LOAD_ITEM("SignatureVersion", "1.0");
    KMS_LOAD_ITEM("AccessKeyId", o->id);
#undef KMS_LOAD_ITEM

    /* The signer wants the sorted map; the query keeps the SDK's order. */
    memcpy(sorted, items, n * sizeof(items[0]));
    params.items = sorted;
    params.count = params.cap = n;
    rc = kms_params_finish(&params, &dup);
    if (rc == KMS_OK)
        rc = kms_sig_v1_string_to_sign(sts, "POST", &params);
    if (rc == KMS_OK)
        rc = kms_sig_v1_sign(o->secret, strlen(o->secret), sts->data, sts->len, sig);
    for (size_t i = 0; i < n && rc == KMS_OK; i++)
        rc = kms_load_add_query(&q, items[i].name, items[i].value);
    if (rc == KMS_OK)
        rc = kms_load_add_query(&q, "Signature", sig);
    /* Appends, not printf: the client's own cost is kept low, it shares the cores. */
    if (rc == KMS_OK) {
        const char *parts[] = {"POST /?",
                               q.data,
                               " HTTP/1.1\r\nx-acs-version: 2016-01-20\r\nx-acs-action: ",
                               a->la_name,
                               "\r\nhost: ",
                               o->host_header,
                               "\r\nuser-agent: " KMS_LOAD_USER_AGENT "\r\n"
                               "Connection: keep-alive\r\nContent-Length: 0\r\n\r\n"};

        kms_buf_reset(out);
        for (size_t i = 0; i < KMS_ARRAY_LEN(parts) && rc == KMS_OK; i++)
            rc = kms_buf_append_str(out, parts[i]);
    }
    kms_buf_free(&q);
    return rc;
}

/* ---- connections ---- */

static void kms_load_print_ssl_error(const char *what)
{
    unsigned long e = ERR_get_error();
    char msg[256];

    if (e == 0) {
        fprintf(stderr, "kms-load: %s: %s\n", what, errno ? strerror(errno) : "connection closed");
        return;
    }
    ERR_error_string_n(e, msg, sizeof(msg));
    fprintf(stderr, "kms-load: %s: %s\n", what, msg);
    ERR_clear_error();
}

static void kms_load_disconnect(struct kms_load_conn *c)
{
    if (c->lc_ssl != NULL) {
        SSL_free(c->lc_ssl);
        c->lc_ssl = NULL;
    }
    if (c->lc_fd >= 0) {
        close(c->lc_fd);
        c->lc_fd = -1;
    }
    c->lc_events = 0;
}

/* Opens the TCP connection and completes the TLS handshake (blocking), then goes non-blocking. */
static bool kms_load_connect(struct kms_load_conn *c, bool nonblocking, bool report)
{
    int one = 1;
    int fd;

    fd = socket(kms_load_addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    if (connect(fd, kms_load_addr->ai_addr, kms_load_addr->ai_addrlen) != 0) {
        if (report)
            fprintf(stderr, "kms-load: connect to %s:%s: %s\n", kms_load_opt.host,
                    kms_load_opt.port, strerror(errno));
        close(fd);
        return false;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->lc_fd = fd;
    c->lc_ssl = SSL_new(kms_load_ctx);
    if (c->lc_ssl == NULL || SSL_set_fd(c->lc_ssl, fd) != 1) {
        kms_load_disconnect(c);
        return false;
    }
    SSL_set_tlsext_host_name(c->lc_ssl, kms_load_opt.host);
    if (SSL_connect(c->lc_ssl) != 1) {
        if (report)
            kms_load_print_ssl_error("TLS handshake");
        kms_load_disconnect(c);
        return false;
    }
    if (nonblocking && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        kms_load_disconnect(c);
        return false;
    }
    return true;
}

static void kms_load_watch(struct kms_load_conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    if (c->lc_thread == NULL || c->lc_events == events)
        return;
    if (c->lc_events == 0)
        epoll_ctl(c->lc_thread->lt_epfd, EPOLL_CTL_ADD, c->lc_fd, &ev);
    else if (events == 0)
        epoll_ctl(c->lc_thread->lt_epfd, EPOLL_CTL_DEL, c->lc_fd, NULL);
    else
        epoll_ctl(c->lc_thread->lt_epfd, EPOLL_CTL_MOD, c->lc_fd, &ev);
    c->lc_events = events;
}

/* Header value of name in the response head [0, head_len), or NULL; *len gets its length. */
static const char *kms_load_header(const struct kms_load_conn *c, const char *name, size_t *len)
{
    size_t name_len = strlen(name);
    const char *p = memchr(c->lc_resp, '\n', c->lc_head_len);
    const char *end = c->lc_resp + c->lc_head_len;

    while (p != NULL && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));

        if (eol == NULL)
            break;
        if ((size_t)(eol - line) > name_len && strncasecmp(line, name, name_len) == 0 &&
            line[name_len] == ':') {
            const char *v = line + name_len + 1;
            const char *ve = eol;

            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

/* Parses the head once it is complete. False on a response that is not HTTP/1.1-shaped. */
static bool kms_load_parse_head(struct kms_load_conn *c)
{
    const char *v;
    size_t len;

    if (c->lc_head_len < 12 || strncmp(c->lc_resp, "HTTP/1.", 7) != 0)
        return false;
    c->lc_status = atoi(c->lc_resp + 9);
    c->lc_content_length = -1;
    c->lc_chunked = false;
    c->lc_close = strncmp(c->lc_resp, "HTTP/1.0", 8) == 0;
    v = kms_load_header(c, "content-length", &len);
    if (v != NULL)
        c->lc_content_length = strtoll(v, NULL, 10);
    v = kms_load_header(c, "transfer-encoding", &len);
    if (v != NULL && len >= 7 && strncasecmp(v + len - 7, "chunked", 7) == 0)
        c->lc_chunked = true;
    v = kms_load_header(c, "connection", &len);
    if (v != NULL && len == 5 && strncasecmp(v, "close", 5) == 0)
        c->lc_close = true;
    else if (v != NULL && len == 10 && strncasecmp(v, "keep-alive", 10) == 0)
        c->lc_close = false;
    return c->lc_chunked || c->lc_content_length >= 0;
}

/* 1: the chunked body is complete; 0: more is needed; -1: malformed. */
static int kms_load_chunked_done(const struct kms_load_conn *c)
{
    const char *p = c->lc_resp + c->lc_head_len;
    const char *end = c->lc_resp + c->lc_resp_len;

    for (;;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        char *num_end = NULL;
        unsigned long long size;

        if (eol == NULL)
            return 0;
        size = strtoull(p, &num_end, 16);
        if (num_end == p)
            return -1;
        p = eol + 1;
        if (size == 0) {
            /* Trailers (none expected) end with an empty line. */
            for (;;) {
                eol = memchr(p, '\n', (size_t)(end - p));
                if (eol == NULL)
                    return 0;
                if (eol == p || (eol == p + 1 && *p == '\r'))
                    return eol + 1 == end ? 1 : -1;
                p = eol + 1;
            }
        }
        if ((size_t)(end - p) < size + 2)
            return 0;
        p += size + 2;
    }
}

/* 1: a whole response is buffered; 0: more is needed; -1: malformed. */
static int kms_load_response_done(struct kms_load_conn *c)
{
    if (c->lc_head_len == 0) {
        const char *h = NULL;

        for (size_t i = 3; i < c->lc_resp_len; i++)
            if (c->lc_resp[i] == '\n' && c->lc_resp[i - 1] == '\r' && c->lc_resp[i - 2] == '\n' &&
                c->lc_resp[i - 3] == '\r') {
                h = c->lc_resp + i + 1;
                break;
            }
        if (h == NULL)
            return 0;
        c->lc_head_len = (size_t)(h - c->lc_resp);
        if (!kms_load_parse_head(c))
            return -1;
    }
    if (c->lc_chunked)
        return kms_load_chunked_done(c);
    if (c->lc_resp_len - c->lc_head_len < (size_t)c->lc_content_length)
        return 0;
    return c->lc_resp_len - c->lc_head_len == (size_t)c->lc_content_length ? 1 : -1;
}

static void kms_load_show_error(const struct kms_load_conn *c)
{
    if (atomic_flag_test_and_set(&kms_load_error_shown))
        return;
    pthread_mutex_lock(&kms_load_print_mu);
    fprintf(stderr, "kms-load: first error: %s: HTTP %d, body: %.*s\n", c->lc_act->la_name,
            c->lc_status, (int)(c->lc_resp_len - c->lc_head_len), c->lc_resp + c->lc_head_len);
    pthread_mutex_unlock(&kms_load_print_mu);
}

/*
 * Starts the next request on c, or parks it when there is nothing more to send. Under load the
 * action is the thread's next slot of the schedule; a lone connection (--once, set-up) sends
 * the c->lc_act its caller chose.
 */
static bool kms_load_start(struct kms_load_conn *c, struct kms_buf *sts)
{
    const struct kms_load_opts *o = &kms_load_opt;
    struct kms_load_thread *t = c->lc_thread;
    int phase = atomic_load(&kms_load_phase);

    if (phase == KMS_LOAD_STOP) {
        c->lc_state = KMS_LOAD_IDLE;
        return true;
    }
    c->lc_counted = phase == KMS_LOAD_MEASURE;
    if (c->lc_counted && o->requests > 0 && atomic_fetch_add(&kms_load_issued, 1) >= o->requests) {
        c->lc_state = KMS_LOAD_IDLE;
        return true;
    }
    if (t != NULL) {
        c->lc_act = &o->actions[o->schedule[t->lt_next]];
        t->lt_next = (t->lt_next + 1) % o->schedule_len;
    }
    if (kms_load_build(o, c->lc_act, sts, &c->lc_req) != KMS_OK)
        return false;
    c->lc_req_off = 0;
    c->lc_resp_len = 0;
    c->lc_head_len = 0;
    c->lc_state = KMS_LOAD_SEND;
    c->lc_started = kms_load_now_ns();
    return true;
}

/* The connection failed mid-request: count it, reconnect, and retry with a new request. */
static void kms_load_lost(struct kms_load_conn *c, const char *what)
{
    struct kms_load_thread *t = c->lc_thread;

    if (atomic_load(&kms_load_phase) != KMS_LOAD_STOP) {
        t->lt_stats[c->lc_act - kms_load_opt.actions].ls_io_errors++;
        if (!atomic_flag_test_and_set(&kms_load_io_error_shown))
            kms_load_print_ssl_error(what);
    }
    kms_load_watch(c, 0);
    kms_load_disconnect(c);
    ERR_clear_error();
    if (atomic_load(&kms_load_phase) == KMS_LOAD_STOP || !kms_load_connect(c, true, true)) {
        c->lc_state = KMS_LOAD_DEAD;
        return;
    }
    t->lt_reconnects++;
    if (!kms_load_start(c, &t->lt_sts))
        c->lc_state = KMS_LOAD_DEAD;
}

/* A whole response arrived: record it and send the next request. */
static void kms_load_complete(struct kms_load_conn *c)
{
    struct kms_load_thread *t = c->lc_thread;
    struct kms_load_stats *st = &t->lt_stats[c->lc_act - kms_load_opt.actions];
    uint64_t now = kms_load_now_ns();
    uint64_t ns = now - c->lc_started;
    bool counted = c->lc_counted && atomic_load(&kms_load_phase) == KMS_LOAD_MEASURE;

    if (counted) {
        st->ls_hist[kms_load_hist_index(ns)]++;
        st->ls_done++;
        if (ns > st->ls_max_ns)
            st->ls_max_ns = ns;
    }
    if (c->lc_status != 200) {
        if (counted)
            st->ls_errors++;
        kms_load_show_error(c);
    }
    if (c->lc_close) {
        /* The server ended keep-alive: reopen (a new handshake), as a client pool would. */
        kms_load_watch(c, 0);
        kms_load_disconnect(c);
        if (!kms_load_connect(c, true, true)) {
            c->lc_state = KMS_LOAD_DEAD;
            return;
        }
        t->lt_reconnects++;
    }
    if (!kms_load_start(c, &t->lt_sts))
        c->lc_state = KMS_LOAD_DEAD;
}

/*
 * Moves c forward as far as it can without blocking: writes the request, reads the response,
 * starts the next one. Returns the epoll events it now waits for (0 when parked or dead).
 */
static uint32_t kms_load_drive(struct kms_load_conn *c)
{
    for (;;) {
        if (c->lc_state == KMS_LOAD_SEND) {
            int n = SSL_write(c->lc_ssl, c->lc_req.data + c->lc_req_off,
                              (int)(c->lc_req.len - c->lc_req_off));

            if (n <= 0) {
                int e = SSL_get_error(c->lc_ssl, n);

                if (e == SSL_ERROR_WANT_WRITE)
                    return EPOLLOUT;
                if (e == SSL_ERROR_WANT_READ)
                    return EPOLLIN;
                kms_load_lost(c, "TLS write");
                continue;
            }
            c->lc_req_off += (size_t)n;
            if (c->lc_req_off == c->lc_req.len)
                c->lc_state = KMS_LOAD_RECV;
        } else if (c->lc_state == KMS_LOAD_RECV) {
            int n, done;

            if (c->lc_resp_cap - c->lc_resp_len < 16384) {
                size_t cap = c->lc_resp_cap ? c->lc_resp_cap * 2 : 32768;
                char *p;

                if (cap > KMS_LOAD_RESPONSE_MAX) {
                    kms_load_lost(c, "response too large");
                    continue;
                }
                p = realloc(c->lc_resp, cap);
                if (p == NULL) {
                    kms_load_lost(c, "out of memory");
                    continue;
                }
                c->lc_resp = p;
                c->lc_resp_cap = cap;
            }
            n = SSL_read(c->lc_ssl, c->lc_resp + c->lc_resp_len,
                         (int)(c->lc_resp_cap - c->lc_resp_len - 1));
            if (n <= 0) {
                int e = SSL_get_error(c->lc_ssl, n);

                if (e == SSL_ERROR_WANT_READ)
                    return EPOLLIN;
                if (e == SSL_ERROR_WANT_WRITE)
                    return EPOLLOUT;
                kms_load_lost(c, "TLS read");
                continue;
            }
            c->lc_resp_len += (size_t)n;
            c->lc_resp[c->lc_resp_len] = '\0';
            done = kms_load_response_done(c);
            if (done < 0) {
                kms_load_lost(c, "malformed HTTP response");
                continue;
            }
            if (done > 0)
                kms_load_complete(c);
        } else {
            return 0;
        }
    }
}

static void *kms_load_thread_main(void *arg)
{
    struct kms_load_thread *t = arg;
    struct epoll_event events[64];
    size_t active;

    for (size_t i = 0; i < t->lt_nconns; i++) {
        struct kms_load_conn *c = &t->lt_conns[i];

        if (!kms_load_start(c, &t->lt_sts))
            c->lc_state = KMS_LOAD_DEAD;
        kms_load_watch(c, kms_load_drive(c));
    }
    for (;;) {
        int n = epoll_wait(t->lt_epfd, events, (int)KMS_ARRAY_LEN(events), 50);

        for (int i = 0; i < n; i++) {
            struct kms_load_conn *c = events[i].data.ptr;

            kms_load_watch(c, kms_load_drive(c));
        }
        if (atomic_load(&kms_load_phase) == KMS_LOAD_STOP)
            break;
        /* With a request budget, a thread ends when every connection is parked. */
        active = 0;
        for (size_t i = 0; i < t->lt_nconns; i++)
            if (t->lt_conns[i].lc_state == KMS_LOAD_SEND ||
                t->lt_conns[i].lc_state == KMS_LOAD_RECV)
                active++;
        if (active == 0)
            break;
    }
    return NULL;
}

/* ---- setup ---- */

static bool kms_load_resolve(struct kms_load_opts *o, const char *endpoint)
{
    static char host[256], port[16], host_header[300];
    struct addrinfo hints;
    const char *colon;
    size_t host_len;

    if (strncmp(endpoint, "https://", 8) == 0)
        endpoint += 8;
    snprintf(host_header, sizeof(host_header), "%s", endpoint);
    host_header[strcspn(host_header, "/")] = '\0';
    if (host_header[0] == '[') {
        const char *close = strchr(host_header, ']');

        if (close == NULL || close[1] != ':')
            return false;
        host_len = (size_t)(close - host_header - 1);
        memcpy(host, host_header + 1, host_len);
        colon = close + 1;
    } else {
        colon = strrchr(host_header, ':');
        if (colon == NULL)
            return false;
        host_len = (size_t)(colon - host_header);
        memcpy(host, host_header, host_len);
    }
    if (host_len == 0 || host_len >= sizeof(host))
        return false;
    host[host_len] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    o->host = host;
    o->port = port;
    o->host_header = host_header;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    return getaddrinfo(host, port, &hints, &kms_load_addr) == 0;
}

static bool kms_load_tls_init(const struct kms_load_opts *o)
{
    kms_load_ctx = SSL_CTX_new(TLS_client_method());
    if (kms_load_ctx == NULL)
        return false;
    SSL_CTX_set_min_proto_version(kms_load_ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(kms_load_ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(kms_load_ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->cacert != NULL) {
        if (SSL_CTX_load_verify_locations(kms_load_ctx, o->cacert, NULL) != 1)
            return false;
        SSL_CTX_set_verify(kms_load_ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(kms_load_ctx, SSL_VERIFY_NONE, NULL);
    }
    return true;
}

/*
 * Sends one request of action a on a blocking connection and waits for the whole answer. *c
 * keeps the response (status, head, body) for the caller.
 */
static bool kms_load_one(struct kms_load_conn *c, const struct kms_load_action *a)
{
    struct kms_buf sts = {0};
    bool ok = false;

    c->lc_fd = -1;
    c->lc_act = a;
    atomic_store(&kms_load_phase, KMS_LOAD_WARMUP);
    if (!kms_load_connect(c, false, true))
        return false;
    if (!kms_load_start(c, &sts))
        goto out;
    while (c->lc_state == KMS_LOAD_SEND || c->lc_state == KMS_LOAD_RECV) {
        if (c->lc_state == KMS_LOAD_SEND) {
            int n = SSL_write(c->lc_ssl, c->lc_req.data + c->lc_req_off,
                              (int)(c->lc_req.len - c->lc_req_off));

            if (n <= 0) {
                kms_load_print_ssl_error("TLS write");
                goto out;
            }
            c->lc_req_off += (size_t)n;
            if (c->lc_req_off == c->lc_req.len)
                c->lc_state = KMS_LOAD_RECV;
        } else {
            int n, done;

            if (c->lc_resp_cap - c->lc_resp_len < 16384) {
                size_t cap = c->lc_resp_cap ? c->lc_resp_cap * 2 : 32768;
                char *p = cap > KMS_LOAD_RESPONSE_MAX ? NULL : realloc(c->lc_resp, cap);

                if (p == NULL)
                    goto out;
                c->lc_resp = p;
                c->lc_resp_cap = cap;
            }
            n = SSL_read(c->lc_ssl, c->lc_resp + c->lc_resp_len,
                         (int)(c->lc_resp_cap - c->lc_resp_len - 1));
            if (n <= 0) {
                kms_load_print_ssl_error("TLS read");
                goto out;
            }
            c->lc_resp_len += (size_t)n;
            c->lc_resp[c->lc_resp_len] = '\0';
            done = kms_load_response_done(c);
            if (done < 0) {
                fputs("kms-load: malformed HTTP response\n", stderr);
                goto out;
            }
            if (done > 0)
                c->lc_state = KMS_LOAD_IDLE;
        }
    }
    ok = true;
out:
    kms_buf_free(&sts);
    return ok;
}

/* The value of "name":"..." in a flat JSON body (Base64 and ids need no unescaping). */
static char *kms_load_json_string(const char *body, const char *name)
{
    char pattern[128];
    const char *p, *end;

    snprintf(pattern, sizeof(pattern), "\"%s\":\"", name);
    p = strstr(body, pattern);
    if (p == NULL)
        return NULL;
    p += strlen(pattern);
    end = strchr(p, '"');
    return end ? kms_strndup(p, (size_t)(end - p)) : NULL;
}

static bool kms_load_has_param(const struct kms_load_action *a, const char *name)
{
    for (size_t i = 0; i < a->la_nparams; i++)
        if (strcmp(a->la_names[i], name) == 0)
            return true;
    return false;
}

static bool kms_load_add_param(struct kms_load_action *a, const char *name, const char *value)
{
    if (a->la_nparams == KMS_LOAD_MAX_PARAMS)
        return false;
    a->la_names[a->la_nparams] = name;
    a->la_values[a->la_nparams++] = value;
    return true;
}

/* Decrypt without a CiphertextBlob: one Encrypt of plaintext under key_id makes the blob. */
static bool kms_load_make_blob(struct kms_load_action *a, const char *key_id, const char *plaintext)
{
    struct kms_load_action enc = {.la_name = "Encrypt", .la_weight = 1};
    struct kms_load_conn c = {0};
    char *blob = NULL;
    bool ok;

    kms_load_add_param(&enc, "KeyId", key_id);
    kms_load_add_param(&enc, "Plaintext", plaintext);
    ok = kms_load_one(&c, &enc);
    if (ok && c.lc_status == 200)
        blob = kms_load_json_string(c.lc_resp + c.lc_head_len, "CiphertextBlob");
    if (blob == NULL) {
        fprintf(stderr, "kms-load: the Encrypt that makes Decrypt's blob failed: HTTP %d %s\n",
                c.lc_status, c.lc_resp ? c.lc_resp + c.lc_head_len : "");
        ok = false;
    } else if (!kms_load_add_param(a, "CiphertextBlob", blob)) {
        free(blob);
        ok = false;
    } else {
        a->la_blob = blob;
        ok = true;
    }
    kms_load_disconnect(&c);
    kms_buf_free(&c.lc_req);
    free(c.lc_resp);
    return ok;
}

/* The sums over threads of action i's stats, or of every action's when i is nactions. */
static void kms_load_sum(const struct kms_load_opts *o, const struct kms_load_thread *threads,
                         size_t i, struct kms_load_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (int t = 0; t < o->threads; t++)
        for (size_t a = 0; a < o->nactions; a++) {
            const struct kms_load_stats *st = &threads[t].lt_stats[a];

            if (i != o->nactions && a != i)
                continue;
            for (size_t b = 0; b < KMS_LOAD_HIST_BUCKETS; b++)
                sum->ls_hist[b] += st->ls_hist[b];
            sum->ls_done += st->ls_done;
            sum->ls_errors += st->ls_errors;
            sum->ls_io_errors += st->ls_io_errors;
            if (st->ls_max_ns > sum->ls_max_ns)
                sum->ls_max_ns = st->ls_max_ns;
        }
}

/* p50, p90, p99 of a summed histogram, in ms (a bucket's middle can lie above its largest). */
static void kms_load_percentiles(const struct kms_load_stats *sum, double pct[3])
{
    static const double at[3] = {50, 90, 99};

    for (int i = 0; i < 3; i++)
        pct[i] = fmin(kms_load_hist_percentile(sum->ls_hist, sum->ls_done, at[i]) / 1e6,
                      (double)sum->ls_max_ns / 1e6);
}

/* A mixed load's row per action, for people and then for scripts (before the final line). */
static void kms_load_report_actions(const struct kms_load_opts *o,
                                    const struct kms_load_thread *threads, double seconds)
{
    static struct kms_load_stats one; /* large: not on the stack */
    struct kms_load_stats *sum = &one;

    printf("  %-32s %10s %9s %8s %8s %8s %8s %7s %7s\n", "by action", "requests", "req/s", "p50 ms",
           "p90 ms", "p99 ms", "max ms", "errors", "lost");
    for (size_t a = 0; a < o->nactions; a++) {
        double pct[3];

        kms_load_sum(o, threads, a, sum);
        kms_load_percentiles(sum, pct);
        printf("  %-32s %10llu %9.0f %8.3f %8.3f %8.3f %8.3f %7llu %7llu\n", o->actions[a].la_name,
               (unsigned long long)sum->ls_done, seconds > 0 ? (double)sum->ls_done / seconds : 0,
               pct[0], pct[1], pct[2], (double)sum->ls_max_ns / 1e6,
               (unsigned long long)sum->ls_errors, (unsigned long long)sum->ls_io_errors);
    }
    for (size_t a = 0; a < o->nactions; a++) {
        double pct[3];

        kms_load_sum(o, threads, a, sum);
        kms_load_percentiles(sum, pct);
        printf("result_action label=%s action=%s requests=%llu rps=%.1f p50_ms=%.3f p90_ms=%.3f "
               "p99_ms=%.3f max_ms=%.3f errors=%llu io_errors=%llu\n",
               o->label ? o->label : "-", o->actions[a].la_name, (unsigned long long)sum->ls_done,
               seconds > 0 ? (double)sum->ls_done / seconds : 0, pct[0], pct[1], pct[2],
               (double)sum->ls_max_ns / 1e6, (unsigned long long)sum->ls_errors,
               (unsigned long long)sum->ls_io_errors);
    }
}

static void kms_load_report(const struct kms_load_opts *o, struct kms_load_thread *threads,
                            double seconds, struct kms_load_ticks server, double client_cpu,
                            const char *cipher)
{
    static struct kms_load_stats sum; /* large: not on the stack */
    const char *action = o->nactions == 1 ? o->actions[0].la_name : "mix";
    uint64_t reconnects = 0;
    double rps, pct[3], per_tick, server_us = -1, system_us = -1, client_us = -1;
    long hz = sysconf(_SC_CLK_TCK);

    for (int t = 0; t < o->threads; t++)
        reconnects += threads[t].lt_reconnects;
    kms_load_sum(o, threads, o->nactions, &sum);
    kms_load_percentiles(&sum, pct);
    rps = seconds > 0 ? (double)sum.ls_done / seconds : 0;
    if (o->npids > 0 && sum.ls_done > 0 && hz > 0) {
        per_tick = 1e6 / (double)hz / (double)sum.ls_done;
        server_us = (double)(server.lk_user + server.lk_system) * per_tick;
        system_us = (double)server.lk_system * per_tick;
    }
    if (sum.ls_done > 0)
        client_us = client_cpu * 1e6 / (double)sum.ls_done;

    printf("kms-load: %s%s%s against %s:%s (%s), %d connections, %d threads, %.1f s measured\n",
           o->label ? o->label : "", o->label ? " " : "", action, o->host, o->port, cipher,
           o->connections, o->threads, seconds);
    printf("  requests    %llu  (%.0f/s)\n", (unsigned long long)sum.ls_done, rps);
    printf("  errors      %llu non-200, %llu connections lost, %llu reconnects\n",
           (unsigned long long)sum.ls_errors, (unsigned long long)sum.ls_io_errors,
           (unsigned long long)reconnects);
    printf("  latency     p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n", pct[0], pct[1],
           pct[2], (double)sum.ls_max_ns / 1e6);
    if (server_us >= 0)
        printf("  server CPU  %.1f us/request, %.1f of them system (%zu processes)\n", server_us,
               system_us, o->npids);
    printf("  client CPU  %.1f us/request\n", client_us);
    if (o->nactions > 1)
        kms_load_report_actions(o, threads, seconds);
    printf("result label=%s action=%s requests=%llu seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f errors=%llu io_errors=%llu server_cpu_us=%.2f "
           "client_cpu_us=%.2f server_system_us=%.2f\n",
           o->label ? o->label : "-", action, (unsigned long long)sum.ls_done, seconds, rps, pct[0],
           pct[1], pct[2], (double)sum.ls_max_ns / 1e6, (unsigned long long)sum.ls_errors,
           (unsigned long long)sum.ls_io_errors, server_us, client_us, system_us);
}

static void kms_load_sleep(double seconds)
{
    struct timespec ts;

    if (seconds <= 0)
        return;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The --param options as given, before they are dealt to the actions. */
struct kms_load_args {
    const char *scope[KMS_LOAD_MAX_ARGS]; /* the ACTION: prefix, or NULL for every action */
    const char *name[KMS_LOAD_MAX_ARGS];
    const char *value[KMS_LOAD_MAX_ARGS];
    size_t count;
};

static struct kms_load_action *kms_load_find_action(struct kms_load_opts *o, const char *name)
{
    for (size_t i = 0; i < o->nactions; i++)
        if (strcmp(o->actions[i].la_name, name) == 0)
            return &o->actions[i];
    return NULL;
}

/* --mix NAME[:WEIGHT]: one more action of the load. 0, or a usage error's exit status. */
static int kms_load_add_mix(struct kms_load_opts *o, char *spec)
{
    char *colon = strchr(spec, ':');
    uint64_t weight = 1;

    if (colon != NULL) {
        *colon = '\0';
        if (!kms_load_parse_u64(colon + 1, 1, KMS_LOAD_MAX_WEIGHT, &weight))
            return kms_load_fail_usage("--mix %s: the weight must be 1..%d", spec,
                                       KMS_LOAD_MAX_WEIGHT);
    }
    if (spec[0] == '\0')
        return kms_load_fail_usage("--mix wants ACTION[:WEIGHT]");
    if (kms_load_find_action(o, spec) != NULL)
        return kms_load_fail_usage("--mix %s is given twice", spec);
    if (o->nactions == KMS_LOAD_MAX_ACTIONS)
        return kms_load_fail_usage("at most %d --mix actions", KMS_LOAD_MAX_ACTIONS);
    o->actions[o->nactions].la_name = spec;
    o->actions[o->nactions++].la_weight = (unsigned)weight;
    return 0;
}

/* --param [ACTION:]NAME=VALUE, kept until every --mix is known. */
static int kms_load_add_arg(struct kms_load_args *args, char *arg)
{
    char *eq = strchr(arg, '=');
    char *colon = eq ? memchr(arg, ':', (size_t)(eq - arg)) : NULL;
    const char *scope = NULL;

    if (eq == NULL || eq == arg || colon == arg || (colon != NULL && colon + 1 == eq))
        return kms_load_fail_usage("--param wants [ACTION:]NAME=VALUE, not \"%s\"", arg);
    if (args->count == KMS_LOAD_MAX_ARGS)
        return kms_load_fail_usage("at most %d --param", KMS_LOAD_MAX_ARGS);
    *eq = '\0';
    if (colon != NULL) {
        *colon = '\0';
        scope = arg;
        arg = colon + 1;
    }
    args->scope[args->count] = scope;
    args->name[args->count] = arg;
    args->value[args->count++] = eq + 1;
    return 0;
}

/*
 * Deals the --param options to the actions (in the order given), then adds each action's own
 * parameters unless given: KeyId from --key-id (not for Decrypt, whose blob names its key, nor
 * for the secret actions), and Encrypt's Plaintext. 0, or a usage error's exit status.
 */
static int kms_load_deal_params(struct kms_load_opts *o, const struct kms_load_args *args,
                                const char *key_id, const char *plaintext)
{
    for (size_t i = 0; i < args->count; i++)
        if (args->scope[i] != NULL && kms_load_find_action(o, args->scope[i]) == NULL)
            return kms_load_fail_usage("--param %s:%s: %s is not an action of this load",
                                       args->scope[i], args->name[i], args->scope[i]);
    for (size_t a = 0; a < o->nactions; a++) {
        struct kms_load_action *act = &o->actions[a];
        bool ok = true;

        for (size_t i = 0; i < args->count && ok; i++)
            if (args->scope[i] == NULL || strcmp(args->scope[i], act->la_name) == 0)
                ok = kms_load_add_param(act, args->name[i], args->value[i]);
        if (ok && key_id != NULL && !kms_load_has_param(act, "KeyId") &&
            strcmp(act->la_name, "Decrypt") != 0 && strstr(act->la_name, "Secret") == NULL)
            ok = kms_load_add_param(act, "KeyId", key_id);
        if (ok && strcmp(act->la_name, "Encrypt") == 0 && !kms_load_has_param(act, "Plaintext"))
            ok = kms_load_add_param(act, "Plaintext", plaintext);
        if (!ok)
            return kms_load_fail_usage("%s: at most %d parameters", act->la_name,
                                       KMS_LOAD_MAX_PARAMS);
        if (strcmp(act->la_name, "Decrypt") == 0 && !kms_load_has_param(act, "CiphertextBlob") &&
            key_id == NULL)
            return kms_load_fail_usage("Decrypt needs --param CiphertextBlob=... or --key-id");
    }
    return 0;
}

/*
 * The request schedule: each action in la_weight of the slots, spread evenly (smooth weighted
 * round-robin: every slot goes to the action furthest behind its share).
 */
static bool kms_load_make_schedule(struct kms_load_opts *o)
{
    long long behind[KMS_LOAD_MAX_ACTIONS] = {0};
    size_t total = 0;

    for (size_t a = 0; a < o->nactions; a++)
        total += o->actions[a].la_weight;
    o->schedule = malloc(total);
    if (o->schedule == NULL)
        return false;
    for (size_t slot = 0; slot < total; slot++) {
        size_t best = 0;

        for (size_t a = 0; a < o->nactions; a++) {
            behind[a] += o->actions[a].la_weight;
            if (behind[a] > behind[best])
                best = a;
        }
        behind[best] -= (long long)total;
        o->schedule[slot] = (uint8_t)best;
    }
    o->schedule_len = total;
    return true;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"action", required_argument, NULL, 'a'},
        {"mix", required_argument, NULL, 'm'},
        {"key-id", required_argument, NULL, 'k'},
        {"plaintext-size", required_argument, NULL, 'z'},
        {"param", required_argument, NULL, 'p'},
        {"connections", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"duration", required_argument, NULL, 'd'},
        {"requests", required_argument, NULL, 'n'},
        {"warmup", required_argument, NULL, 'w'},
        {"server-pid", required_argument, NULL, 'P'},
        {"once", no_argument, NULL, '1'},
        {"label", required_argument, NULL, 'l'},
        {"cacert", required_argument, NULL, 'C'},
        {"access-key-id", required_argument, NULL, 'i'},
        {"access-key-secret", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static struct kms_load_args args;
    struct kms_load_opts *o = &kms_load_opt;
    const char *endpoint = NULL, *key_id = NULL, *action = NULL;
    struct kms_load_thread *threads = NULL;
    struct kms_load_conn *conns = NULL;
    uint64_t pt_size = 32, v;
    struct kms_load_ticks ticks0, ticks1, used;
    double cpu0, cpu1, seconds;
    uint64_t t0, t1;
    const char *cipher = "?";
    char *plaintext = NULL;
    int opt, rc, status = 1;

    o->id = getenv("KMS_ACCESS_KEY_ID");
    o->secret = getenv("KMS_ACCESS_KEY_SECRET");
    o->connections = 32;
    o->threads = 2;
    o->duration = 10;
    o->warmup = 2;
    for (;;) {
        opt = getopt_long(argc, argv, "a:c:d:n:t:w:", options, NULL);
        if (opt == -1)
            break;
        switch (opt) {
        case 'e':
            endpoint = optarg;
            break;
        case 'a':
            action = optarg;
            break;
        case 'm':
            rc = kms_load_add_mix(o, optarg);
            if (rc != 0)
                return rc;
            break;
        case 'k':
            key_id = optarg;
            break;
        case 'z':
            if (!kms_load_parse_u64(optarg, 1, 6144, &pt_size))
                return kms_load_fail_usage("--plaintext-size must be 1..6144");
            break;
        case 'p':
            rc = kms_load_add_arg(&args, optarg);
            if (rc != 0)
                return rc;
            break;
        case 'c':
            if (!kms_load_parse_u64(optarg, 1, 100000, &v))
                return kms_load_fail_usage("--connections must be 1..100000");
            o->connections = (int)v;
            break;
        case 't':
            if (!kms_load_parse_u64(optarg, 1, 1024, &v))
                return kms_load_fail_usage("--threads must be 1..1024");
            o->threads = (int)v;
            break;
        case 'd':
            if (!kms_load_parse_double(optarg, 0.1, &o->duration))
                return kms_load_fail_usage("--duration must be at least 0.1 seconds");
            break;
        case 'n':
            if (!kms_load_parse_u64(optarg, 1, UINT64_MAX / 2, &o->requests))
                return kms_load_fail_usage("--requests must be a positive count");
            break;
        case 'w':
            if (!kms_load_parse_double(optarg, 0, &o->warmup))
                return kms_load_fail_usage("--warmup must be 0 or more seconds");
            break;
        case 'P':
            if (!kms_load_parse_u64(optarg, 1, INT32_MAX, &v))
                return kms_load_fail_usage("--server-pid must be a process id");
            if (o->npids == KMS_LOAD_MAX_PIDS)
                return kms_load_fail_usage("too many --server-pid");
            o->pids[o->npids++] = (pid_t)v;
            break;
        case '1':
            o->once = true;
            break;
        case 'l':
            o->label = optarg;
            break;
        case 'C':
            o->cacert = optarg;
            break;
        case 'i':
            o->id = optarg;
            break;
        case 's':
            o->secret = optarg;
            break;
        case 'h':
            kms_load_usage(stdout);
            return 0;
        default:
            return kms_load_fail_usage("unknown option");
        }
    }
    if (optind != argc)
        return kms_load_fail_usage("unexpected argument \"%s\"", argv[optind]);
    if (endpoint == NULL || !kms_load_resolve(o, endpoint))
        return kms_load_fail_usage("--endpoint HOST:PORT is required and must resolve");
    if (o->id == NULL || o->id[0] == '\0' || o->secret == NULL || o->secret[0] == '\0')
        return kms_load_fail_usage("no access key: set KMS_ACCESS_KEY_ID and "
                                   "KMS_ACCESS_KEY_SECRET (or --access-key-id/-secret)");
    if (o->threads > o->connections)
        o->threads = o->connections;

    if (action != NULL && o->nactions > 0)
        return kms_load_fail_usage("--action and --mix exclude each other");
    if (o->nactions == 0) {
        o->actions[0].la_name = action ? action : "Encrypt";
        o->actions[0].la_weight = 1;
        o->nactions = 1;
    }
    if (o->once && o->nactions > 1)
        return kms_load_fail_usage("--once sends one action, not a --mix");
    {
        uint8_t raw[6144];

        if (RAND_bytes(raw, (int)pt_size) != 1)
            return 1;
        plaintext = malloc(KMS_B64_ENCODED_LEN(pt_size) + 1);
        if (plaintext == NULL)
            return 1;
        kms_b64_encode(raw, pt_size, plaintext);
    }
    rc = kms_load_deal_params(o, &args, key_id, plaintext);
    if (rc != 0) {
        free(plaintext);
        return rc;
    }
    if (!kms_load_make_schedule(o) || !kms_load_tls_init(o)) {
        kms_load_print_ssl_error("set-up");
        goto out;
    }
    for (size_t a = 0; a < o->nactions; a++)
        if (strcmp(o->actions[a].la_name, "Decrypt") == 0 &&
            !kms_load_has_param(&o->actions[a], "CiphertextBlob") &&
            !kms_load_make_blob(&o->actions[a], key_id, plaintext))
            goto out;

    if (o->once) {
        struct kms_load_conn c = {0};

        if (kms_load_one(&c, &o->actions[0])) {
            printf("HTTP %d\n%.*s\n", c.lc_status, (int)(c.lc_resp_len - c.lc_head_len),
                   c.lc_resp + c.lc_head_len);
            status = c.lc_status == 200 ? 0 : 1;
        }
        kms_load_disconnect(&c);
        kms_buf_free(&c.lc_req);
        free(c.lc_resp);
        goto out;
    }

    /* Every connection is open and past its handshake before the clock starts. */
    conns = calloc((size_t)o->connections, sizeof(*conns));
    threads = calloc((size_t)o->threads, sizeof(*threads));
    if (conns == NULL || threads == NULL)
        goto out;
    for (int i = 0; i < o->connections; i++) {
        conns[i].lc_fd = -1;
        if (!kms_load_connect(&conns[i], true, i == 0)) {
            fprintf(stderr, "kms-load: could not open connection %d of %d\n", i + 1,
                    o->connections);
            goto out;
        }
    }
    cipher = SSL_get_cipher_name(conns[0].lc_ssl);
    for (int t = 0; t < o->threads; t++) {
        threads[t].lt_epfd = epoll_create1(EPOLL_CLOEXEC);
        threads[t].lt_stats = calloc(o->nactions, sizeof(*threads[t].lt_stats));
        /* Threads start at different places of the schedule, so the mix holds at every moment. */
        threads[t].lt_next = (size_t)t * o->schedule_len / (size_t)o->threads;
        if (threads[t].lt_epfd < 0 || threads[t].lt_stats == NULL)
            goto out;
    }
    /* Connection i belongs to thread i % threads, kept contiguous per thread. */
    {
        int next = 0;

        for (int t = 0; t < o->threads; t++) {
            int share = o->connections / o->threads + (t < o->connections % o->threads);

            threads[t].lt_conns = &conns[next];
            threads[t].lt_nconns = (size_t)share;
            for (int i = 0; i < share; i++)
                conns[next + i].lc_thread = &threads[t];
            next += share;
        }
    }
    kms_load_add_children(o);
    atomic_store(&kms_load_phase, o->warmup > 0 ? KMS_LOAD_WARMUP : KMS_LOAD_MEASURE);
    for (int t = 0; t < o->threads; t++)
        if (pthread_create(&threads[t].lt_tid, NULL, kms_load_thread_main, &threads[t]) != 0) {
            fputs("kms-load: cannot start threads\n", stderr);
            exit(1);
        }
    kms_load_sleep(o->warmup);
    ticks0 = kms_load_server_ticks(o);
    cpu0 = kms_load_self_cpu_s();
    t0 = kms_load_now_ns();
    atomic_store(&kms_load_phase, KMS_LOAD_MEASURE);
    if (o->requests > 0) {
        /* A thread ends once its connections are parked with the budget spent. */
        for (int t = 0; t < o->threads; t++)
            pthread_join(threads[t].lt_tid, NULL);
        t1 = kms_load_now_ns();
        ticks1 = kms_load_server_ticks(o);
        cpu1 = kms_load_self_cpu_s();
    } else {
        kms_load_sleep(o->duration);
        /* Responses that arrive from here on are not counted. */
        atomic_store(&kms_load_phase, KMS_LOAD_STOP);
        t1 = kms_load_now_ns();
        ticks1 = kms_load_server_ticks(o);
        cpu1 = kms_load_self_cpu_s();
        for (int t = 0; t < o->threads; t++)
            pthread_join(threads[t].lt_tid, NULL);
    }
    seconds = (double)(t1 - t0) / 1e9;
    used.lk_user = ticks1.lk_user - ticks0.lk_user;
    used.lk_system = ticks1.lk_system - ticks0.lk_system;
    kms_load_report(o, threads, seconds, used, cpu1 - cpu0, cipher);
    status = 1;
    for (int t = 0; t < o->threads; t++)
        for (size_t a = 0; a < o->nactions; a++)
            if (threads[t].lt_stats[a].ls_done > 0)
                status = 0;
out:
    if (conns != NULL)
        for (int i = 0; i < o->connections; i++) {
            kms_load_disconnect(&conns[i]);
            kms_buf_free(&conns[i].lc_req);
            free(conns[i].lc_resp);
        }
    if (threads != NULL)
        for (int t = 0; t < o->threads; t++) {
            if (threads[t].lt_epfd > 0)
                close(threads[t].lt_epfd);
            kms_buf_free(&threads[t].lt_sts);
            free(threads[t].lt_stats);
        }
    free(conns);
    free(threads);
    free(plaintext);
    for (size_t a = 0; a < o->nactions; a++)
        free(o->actions[a].la_blob);
    free(o->schedule);
    SSL_CTX_free(kms_load_ctx);
    freeaddrinfo(kms_load_addr);
    return status;
}
