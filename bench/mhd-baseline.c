/*
 * mhd-baseline.c - the second baseline of bench/run.sh: libmicrohttpd with nothing of kmsd in
 * it. It answers every request with a fixed body, set up the way src/http/server.c sets up kmsd's
 * listener (thread pool, epoll, GnuTLS with the same certificate and priorities, the same
 * connection memory), so the gap between it and nginx is the HTTP front end's cost and the gap
 * between it and kmsd is kmsd's own.
 *
 *   mhd-baseline --listen PORT --cert cert.pem --key key.pem --body-file body.json
 *                [--threads N] [--pool-bytes BYTES] [--priorities STRING]
 *                [--sign-key PEM --sign-alg RSA_PKCS1_SHA_256|RSA_PSS_SHA_256|ECDSA_SHA_256]
 *
 * --pool-bytes is MHD_OPTION_CONNECTION_MEMORY_LIMIT: kmsd's is max_url_bytes + 16 KiB (144 KiB
 * by default; spec/protocol.md §1 wants 128 KiB request lines), libmicrohttpd's default 32 KiB.
 * libmicrohttpd 0.9.75 zeroes the whole pool after each request, so this is a cost per request.
 * With --sign-key every request also signs a fixed SHA-256 digest with that private key (one
 * context per thread, made once): the cheapest libmicrohttpd server that signs, which is what
 * bench/asym.sh compares AsymmetricSign with beside openssl speed. Runs until SIGINT or SIGTERM.
 */
#include <getopt.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

/* kmsd's default [tls] priorities (src/util/config.c). */
#define BASELINE_PRIORITIES                                                                        \
    "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:"                      \
    "+AES-128-GCM:+CHACHA20-POLY1305:%SERVER_PRECEDENCE"

static char *baseline_body;
static size_t baseline_body_len;
static volatile sig_atomic_t baseline_stop;
static EVP_PKEY *baseline_sign_key; /* NULL: no signature per request */
static const char *baseline_sign_alg = "RSA_PKCS1_SHA_256";
static __thread EVP_PKEY_CTX *baseline_sign_ctx;

static void baseline_on_signal(int sig)
{
    (void)sig;
    baseline_stop = 1;
}

/* The whole file, NUL-terminated; exits on failure (a benchmark tool, not a service). */
static char *baseline_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long len;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (data = malloc((size_t)len + 1)) == NULL ||
        fread(data, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "mhd-baseline: cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    data[len] = '\0';
    *len_out = (size_t)len;
    return data;
}

/* A context set up for baseline_sign_alg on baseline_sign_key; NULL on failure. */
static EVP_PKEY_CTX *baseline_sign_setup(void)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, baseline_sign_key, NULL);
    bool ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
              EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0;

    if (ok && strcmp(baseline_sign_alg, "RSA_PSS_SHA_256") == 0)
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) > 0;
    else if (ok && strcmp(baseline_sign_alg, "RSA_PKCS1_SHA_256") == 0)
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
    if (!ok) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* One signature of a fixed digest, as AsymmetricSign makes; false when it fails. */
static bool baseline_sign(void)
{
    static const unsigned char digest[32] = {0x6b, 0x86, 0xb2, 0x73, 0xff, 0x34, 0xfc, 0xe1};
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);

    if (baseline_sign_ctx == NULL)
        baseline_sign_ctx = baseline_sign_setup();
    return baseline_sign_ctx != NULL &&
           EVP_PKEY_sign(baseline_sign_ctx, sig, &sig_len, digest, sizeof(digest)) == 1;
}

/*
 * Like kmsd: the request is read whole (an SDK's POST has an empty body), then one response with
 * the headers kmsd sends (Content-Type, x-acs-request-id), made for this request.
 */
static enum MHD_Result baseline_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **req_cls)
{
    static int started;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    (void)cls, (void)url, (void)method, (void)version, (void)upload_data;
    if (*req_cls == NULL) {
        *req_cls = &started;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (baseline_sign_key != NULL && !baseline_sign())
        return MHD_NO;
    resp =
        MHD_create_response_from_buffer(baseline_body_len, baseline_body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json;charset=utf-8");
    MHD_add_response_header(resp, "x-acs-request-id", "00000000-0000-4000-8000-000000000000");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void baseline_usage(void)
{
    fprintf(stderr, "usage: mhd-baseline --listen PORT --cert PEM --key PEM --body-file FILE\n"
                    "                    [--threads N] [--pool-bytes BYTES] [--priorities S]\n"
                    "                    [--sign-key PEM --sign-alg ALGORITHM]\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},     {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},        {"body-file", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 't'},    {"pool-bytes", required_argument, NULL, 'p'},
        {"priorities", required_argument, NULL, 'P'}, {"sign-key", required_argument, NULL, 's'},
        {"sign-alg", required_argument, NULL, 'a'},   {NULL, 0, NULL, 0},
    };
    const char *cert_path = NULL, *key_path = NULL, *body_path = NULL, *sign_key_path = NULL;
    const char *priorities = BASELINE_PRIORITIES;
    unsigned long port = 0, threads = 2, pool_bytes = 32 * 1024;
    char *cert, *key;
    size_t cert_len, key_len;
    struct MHD_Daemon *daemon;
    struct sigaction sa;
    int opt;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            port = strtoul(optarg, NULL, 10);
            break;
        case 'c':
            cert_path = optarg;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'b':
            body_path = optarg;
            break;
        case 't':
            threads = strtoul(optarg, NULL, 10);
            break;
        case 'p':
            pool_bytes = strtoul(optarg, NULL, 10);
            break;
        case 'P':
            priorities = optarg;
            break;
        case 's':
            sign_key_path = optarg;
            break;
        case 'a':
            baseline_sign_alg = optarg;
            break;
        default:
            baseline_usage();
            return 2;
        }
    }
    if (port == 0 || port > 65535 || threads == 0 || threads > 256 || pool_bytes < 4096 ||
        cert_path == NULL || key_path == NULL || body_path == NULL ||
        (strcmp(baseline_sign_alg, "RSA_PKCS1_SHA_256") != 0 &&
         strcmp(baseline_sign_alg, "RSA_PSS_SHA_256") != 0 &&
         strcmp(baseline_sign_alg, "ECDSA_SHA_256") != 0)) {
        baseline_usage();
        return 2;
    }
    cert = baseline_read_file(cert_path, &cert_len);
    key = baseline_read_file(key_path, &key_len);
    baseline_body = baseline_read_file(body_path, &baseline_body_len);
    if (sign_key_path != NULL) {
        FILE *f = fopen(sign_key_path, "r");

        baseline_sign_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (f != NULL)
            fclose(f);
        if (baseline_sign_key == NULL || !baseline_sign()) {
            fprintf(stderr, "mhd-baseline: cannot sign %s with %s\n", baseline_sign_alg,
                    sign_key_path);
            return 1;
        }
    }

    daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_TLS, (uint16_t)port,
        NULL, NULL, baseline_handler, NULL, MHD_OPTION_HTTPS_MEM_CERT, cert,
        MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_PRIORITIES, priorities,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)pool_bytes, MHD_OPTION_CONNECTION_LIMIT, 10000u, MHD_OPTION_END);
    if (daemon == NULL) {
        fprintf(stderr, "mhd-baseline: cannot start libmicrohttpd on port %lu\n", port);
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = baseline_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "mhd-baseline: port %lu, %lu threads, pool %lu bytes\n", port, threads,
            pool_bytes);
    while (!baseline_stop)
        pause();
    MHD_stop_daemon(daemon);
    free(cert);
    explicit_bzero(key, key_len); /* the dev certificate's private key */
    free(key);
    free(baseline_body);
    EVP_PKEY_CTX_free(baseline_sign_ctx);
    EVP_PKEY_free(baseline_sign_key);
    return 0;
}
