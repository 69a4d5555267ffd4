/*
 * kms_sign.c - the kms-sign command: prints one V1-signed request URL for curl, so a running
 * kmsd can be tried by hand without an SDK:
 *
 *   curl -k "$(kms-sign --endpoint https://127.0.0.1:8443 Action=ListKeys PageSize=20)"
 *
 * It signs with the same code the server verifies with (src/auth/), builds the parameter map
 * through the server's own parser, and never prints the secret.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "kms/auth.h"
#include "kms/http.h"
#include "kms/util.h"

#define KMS_SIGN_EXIT_USAGE  2
#define KMS_SIGN_NONCE_BYTES 16 /* 32 hex digits, like the SDKs */

static void kms_sign_usage(FILE *to)
{
    fputs("usage: kms-sign --endpoint URL [--method GET|POST] [--access-key-id ID]\n"
          "                [--access-key-secret SECRET] Name=Value ...\n"
          "\n"
          "Prints <endpoint>/?<parameters> signed with signature version 1 (HMAC-SHA1):\n"
          "the given parameters plus Format=JSON, Version=2016-01-20, AccessKeyId,\n"
          "SignatureMethod=HMAC-SHA1, SignatureVersion=1.0, Timestamp (now, UTC),\n"
          "SignatureNonce (random) and Signature, percent-encoded by RFC 3986.\n"
          "A given parameter replaces the default of the same name (e.g. Format=XML).\n"
          "Values are given as plain text, not URL-encoded.\n"
          "\n"
          "  --endpoint URL            https://HOST:PORT of kmsd (https:// is assumed if omitted)\n"
          "  --method GET|POST         the method curl will use (default GET; for POST run\n"
          "                            curl -X POST \"$(kms-sign --method POST ...)\")\n"
          "  --access-key-id ID        default: $KMS_ACCESS_KEY_ID\n"
          "  --access-key-secret S     default: $KMS_ACCESS_KEY_SECRET (prefer the variable:\n"
          "                            command lines are visible to other users)\n"
          "  --help                    this text\n"
          "\n"
          "example: curl -k \"$(kms-sign --endpoint https://127.0.0.1:8443 Action=ListKeys)\"\n",
          to);
}

/* Reports a usage error; returns the exit status for it. */
static int kms_sign_fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int kms_sign_fail_usage(const char *fmt, ...)
{
    va_list ap;

    fputs("kms-sign: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(kms-sign --help for usage)\n", stderr);
    return KMS_SIGN_EXIT_USAGE;
}

/* Appends name=value to an encoded query, as the server's parser expects to read it. */
static kms_err kms_sign_add(struct kms_buf *q, const char *name, size_t name_len, const char *value)
{
    kms_err rc = KMS_OK;

    if (q->len > 0)
        rc = kms_buf_append_char(q, '&');
    if (rc == KMS_OK)
        rc = kms_percent_encode(q, name, name_len);
    if (rc == KMS_OK)
        rc = kms_buf_append_char(q, '=');
    if (rc == KMS_OK)
        rc = kms_percent_encode(q, value, strlen(value));
    return rc;
}

/* True when argv[first..argc) has a Name=Value argument called name. */
static bool kms_sign_given(char **argv, int first, int argc, const char *name)
{
    size_t n = strlen(name);

    for (int i = first; i < argc; i++)
        if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=')
            return true;
    return false;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"method", required_argument, NULL, 'm'},
        {"access-key-id", required_argument, NULL, 'i'},
        {"access-key-secret", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *endpoint = NULL, *method = "GET";
    const char *id = getenv("KMS_ACCESS_KEY_ID");
    const char *secret = getenv("KMS_ACCESS_KEY_SECRET");
    struct kms_buf query = {0}, sts = {0}, url = {0};
    struct kms_params params = {0};
    char timestamp[KMS_TIME_LEN], sig[KMS_SIG_V1_LEN + 1];
    char nonce[2 * KMS_SIGN_NONCE_BYTES + 1];
    uint8_t nonce_bytes[KMS_SIGN_NONCE_BYTES];
    const char *dup = NULL;
    size_t endpoint_len;
    int opt, status = 1;
    kms_err rc = KMS_OK;

    for (;;) {
        opt = getopt_long(argc, argv, "", options, NULL);
        if (opt == -1)
            break;
        switch (opt) {
        case 'e':
            endpoint = optarg;
            break;
        case 'm':
            method = optarg;
            break;
        case 'i':
            id = optarg;
            break;
        case 's':
            secret = optarg;
            break;
        case 'h':
            kms_sign_usage(stdout);
            return 0;
        default:
            return kms_sign_fail_usage("unknown option");
        }
    }
    if (endpoint == NULL || endpoint[0] == '\0')
        return kms_sign_fail_usage("--endpoint is required (e.g. https://127.0.0.1:8443)");
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        return kms_sign_fail_usage("--method must be GET or POST, not \"%s\"", method);
    if (id == NULL || id[0] == '\0')
        return kms_sign_fail_usage(
            "no access key id: give --access-key-id or set KMS_ACCESS_KEY_ID");
    if (secret == NULL || secret[0] == '\0')
        return kms_sign_fail_usage(
            "no access key secret: set KMS_ACCESS_KEY_SECRET or give --access-key-secret");
    if (optind == argc)
        return kms_sign_fail_usage("no parameters (at least Action=..., e.g. Action=ListKeys)");

    /* The caller's parameters, then every default the caller did not replace. */
    for (int i = optind; i < argc && rc == KMS_OK; i++) {
        const char *eq = strchr(argv[i], '=');

        if (eq == NULL || eq == argv[i]) {
            status = kms_sign_fail_usage("\"%s\" is not Name=Value", argv[i]);
            goto out;
        }
        if (strncmp(argv[i], "Signature=", 10) == 0) {
            status = kms_sign_fail_usage("Signature is computed, not given");
            goto out;
        }
        rc = kms_sign_add(&query, argv[i], (size_t)(eq - argv[i]), eq + 1);
    }
    kms_time_format(time(NULL), timestamp);
    if (RAND_bytes(nonce_bytes, sizeof(nonce_bytes)) != 1) {
        fputs("kms-sign: no randomness for the nonce\n", stderr);
        goto out;
    }
    kms_hex_encode(nonce_bytes, sizeof(nonce_bytes), nonce);
    {
        const char *defaults[][2] = {
            {"Format", "JSON"},          {"Version", "2016-01-20"},
            {"AccessKeyId", id},         {"SignatureMethod", "HMAC-SHA1"},
            {"SignatureVersion", "1.0"}, {"Timestamp", timestamp},
            {"SignatureNonce", nonce},
        };

        for (size_t i = 0; i < KMS_ARRAY_LEN(defaults) && rc == KMS_OK; i++)
            if (!kms_sign_given(argv, optind, argc, defaults[i][0]))
                rc = kms_sign_add(&query, defaults[i][0], strlen(defaults[i][0]), defaults[i][1]);
    }
    if (rc != KMS_OK)
        goto out;

    /* Through the server's parser: the same decoding, UTF-8 rules and duplicate check. */
    rc = kms_params_parse(&params, query.data, query.len, KMS_PARAM_QUERY);
    if (rc == KMS_E_PARSE_REQUEST) {
        status = kms_sign_fail_usage("a parameter is not valid UTF-8");
        goto out;
    }
    if (rc != KMS_OK)
        goto out;
    rc = kms_params_finish(&params, &dup);
    if (rc == KMS_E_INVALID_PARAMETER) {
        status = kms_sign_fail_usage("parameter %s given twice", dup);
        goto out;
    }
    if (rc != KMS_OK)
        goto out;
    rc = kms_sig_v1_string_to_sign(&sts, method, &params);
    if (rc != KMS_OK)
        goto out;
    rc = kms_sig_v1_sign(secret, strlen(secret), sts.data, sts.len, sig);
    if (rc != KMS_OK)
        goto out;

    endpoint_len = strlen(endpoint);
    while (endpoint_len > 0 && endpoint[endpoint_len - 1] == '/')
        endpoint_len--;
    if (strstr(endpoint, "://") == NULL)
        rc = kms_buf_append_str(&url, "https://");
    if (rc == KMS_OK)
        rc = kms_buf_append(&url, endpoint, endpoint_len);
    if (rc == KMS_OK)
        rc = kms_buf_append_str(&url, "/?");
    if (rc == KMS_OK)
        rc = kms_sig_canonical_query(&url, &params, KMS_PARAM_QUERY, NULL);
    if (rc == KMS_OK)
        rc = kms_buf_append_str(&url, "&Signature=");
    if (rc == KMS_OK)
        rc = kms_percent_encode(&url, sig, strlen(sig));
    if (rc != KMS_OK)
        goto out;
    puts(url.data);
    status = 0;
out:
    if (status == 1 && rc != KMS_OK)
        fputs("kms-sign: out of memory\n", stderr);
    kms_params_free(&params);
    kms_buf_free(&query);
    kms_buf_free(&sts);
    kms_buf_free(&url);
    return status;
}
