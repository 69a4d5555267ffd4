/*
 * tls.c - the certificate every TLS listener presents, loaded from the configured PEM files and
 * replaced on SIGHUP without touching the listeners.
 *
 * libmicrohttpd asks for the certificate on every handshake through GnuTLS's retrieve callback
 * (MHD_OPTION_HTTPS_CERT_CALLBACK), which returns the current identity: a reload builds a new
 * one completely, checks it (the chain parses, the key parses and matches the first
 * certificate, the certificate is valid now) and only then swaps it in, so a bad file leaves
 * the old certificate serving and the log says why. GnuTLS does not copy what the callback
 * returns and may refer to it for as long as a session lives, so an identity that was replaced
 * is kept (a few KiB per reload) until the process stops.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <openssl/crypto.h>

#include "kms/http.h"
#include "kms/log.h"
#include "kms/metrics.h"

#define KMS_TLS_CHAIN_MAX 16

struct kms_tls_identity {
    struct kms_tls_identity *ti_retired;
    gnutls_pcert_st ti_certs[KMS_TLS_CHAIN_MAX];
    unsigned int ti_count;
    gnutls_privkey_t ti_key;
    time_t ti_expires;
};

static _Atomic(struct kms_tls_identity *) kms_tls_current;
static pthread_mutex_t kms_tls_lock = PTHREAD_MUTEX_INITIALIZER; /* loads and the retired list */
static struct kms_tls_identity *kms_tls_retired;

static void kms_tls_identity_free(struct kms_tls_identity *id)
{
    if (id == NULL)
        return;
    for (unsigned int i = 0; i < id->ti_count; i++)
        gnutls_pcert_deinit(&id->ti_certs[i]);
    if (id->ti_key != NULL)
        gnutls_privkey_deinit(id->ti_key);
    free(id);
}

/* The whole file into a buffer (wiped by the caller: it may be a private key). */
static bool kms_tls_read(const char *path, struct kms_buf *out, char *why, size_t size)
{
    FILE *f = fopen(path, "rb");
    char chunk[4096];
    size_t n;

    if (f == NULL) {
        snprintf(why, size, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (kms_buf_append(out, chunk, n) != KMS_OK) {
            snprintf(why, size, "out of memory reading %s", path);
            OPENSSL_cleanse(chunk, sizeof(chunk));
            fclose(f);
            return false;
        }
    }
    OPENSSL_cleanse(chunk, sizeof(chunk));
    fclose(f);
    return true;
}

/* Whether two public keys are the same key (their DER SubjectPublicKeyInfo). */
static bool kms_tls_same_key(gnutls_pubkey_t a, gnutls_pubkey_t b)
{
    gnutls_datum_t da = {NULL, 0}, db = {NULL, 0};
    bool same = gnutls_pubkey_export2(a, GNUTLS_X509_FMT_DER, &da) == 0 &&
                gnutls_pubkey_export2(b, GNUTLS_X509_FMT_DER, &db) == 0 && da.size == db.size &&
                memcmp(da.data, db.data, da.size) == 0;

    gnutls_free(da.data);
    gnutls_free(db.data);
    return same;
}

/* The first certificate's validity window; false (with why) when it cannot be read. */
static bool kms_tls_validity(gnutls_pcert_st *pcert, time_t *from, time_t *until, char *why,
                             size_t size)
{
    gnutls_x509_crt_t crt = NULL;

    if (gnutls_pcert_export_x509(pcert, &crt) != 0) {
        snprintf(why, size, "cannot read the certificate's validity");
        return false;
    }
    *from = gnutls_x509_crt_get_activation_time(crt);
    *until = gnutls_x509_crt_get_expiration_time(crt);
    gnutls_x509_crt_deinit(crt);
    return true;
}

/* Builds and checks an identity from the two files; NULL with the reason in why. */
static struct kms_tls_identity *kms_tls_build(const char *cert_file, const char *key_file,
                                              bool strict_time, char *why, size_t size)
{
    struct kms_tls_identity *id = calloc(1, sizeof(*id));
    struct kms_buf cert = {0}, key = {0};
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t d;
    time_t from = 0, until = 0, now = time(NULL);
    int rc;
    bool ok = false;

    if (id == NULL) {
        snprintf(why, size, "out of memory");
        return NULL;
    }
    if (!kms_tls_read(cert_file, &cert, why, size) || !kms_tls_read(key_file, &key, why, size))
        goto out;
    d.data = (unsigned char *)cert.data;
    d.size = (unsigned int)cert.len;
    id->ti_count = KMS_TLS_CHAIN_MAX;
    rc = cert.len == 0 ? GNUTLS_E_BASE64_DECODING_ERROR
                       : gnutls_pcert_list_import_x509_raw(id->ti_certs, &id->ti_count, &d,
                                                           GNUTLS_X509_FMT_PEM,
                                                           GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (rc < 0 || id->ti_count == 0) {
        id->ti_count = 0;
        snprintf(why, size, "%s is not a PEM certificate chain (%s)", cert_file,
                 gnutls_strerror(rc));
        goto out;
    }
    d.data = (unsigned char *)key.data;
    d.size = (unsigned int)key.len;
    rc = gnutls_privkey_init(&id->ti_key);
    if (rc == 0)
        rc = key.len == 0
                 ? GNUTLS_E_BASE64_DECODING_ERROR
                 : gnutls_privkey_import_x509_raw(id->ti_key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc < 0) {
        snprintf(why, size, "%s is not a PEM private key (%s)", key_file, gnutls_strerror(rc));
        goto out;
    }
    if (gnutls_pubkey_init(&pub) != 0 || gnutls_pubkey_import_privkey(pub, id->ti_key, 0, 0) != 0 ||
        !kms_tls_same_key(pub, id->ti_certs[0].pubkey)) {
        snprintf(why, size, "the key in %s does not belong to the certificate in %s", key_file,
                 cert_file);
        goto out;
    }
    if (!kms_tls_validity(&id->ti_certs[0], &from, &until, why, size))
        goto out;
    id->ti_expires = until;
    if (strict_time && (now < from || now > until)) {
        snprintf(why, size, "the certificate in %s is %s", cert_file,
                 now < from ? "not valid yet" : "expired");
        goto out;
    }
    if (now > until)
        kms_log_warn("tls: the certificate in %s has expired", cert_file);
    ok = true;
out:
    if (pub != NULL)
        gnutls_pubkey_deinit(pub);
    kms_buf_free(&cert);
    kms_buf_free_secret(&key);
    if (!ok) {
        kms_tls_identity_free(id);
        return NULL;
    }
    return id;
}

kms_err kms_tls_load(const char *cert_file, const char *key_file)
{
    struct kms_tls_identity *id, *old;
    char why[512 + 2 * PATH_MAX];
    char until[KMS_TIME_LEN];
    bool reload;

    pthread_mutex_lock(&kms_tls_lock);
    reload = atomic_load(&kms_tls_current) != NULL;
    id = kms_tls_build(cert_file, key_file, reload, why, sizeof(why));
    if (id == NULL) {
        pthread_mutex_unlock(&kms_tls_lock);
        if (reload) {
            kms_metrics_tls_reload(false);
            kms_log_error("tls: reload refused, still serving the previous certificate: %s", why);
        } else {
            kms_log_error("tls: %s", why);
        }
        return KMS_E_INVALID_PARAMETER;
    }
    old = atomic_exchange(&kms_tls_current, id);
    if (old != NULL) {
        old->ti_retired = kms_tls_retired;
        kms_tls_retired = old;
    }
    pthread_mutex_unlock(&kms_tls_lock);
    kms_time_format(id->ti_expires, until);
    if (reload)
        kms_metrics_tls_reload(true);
    kms_log_info("tls: %s certificate %s (%u in the chain, valid until %s)",
                 reload ? "reloaded" : "loaded", cert_file, id->ti_count, until);
    return KMS_OK;
}

static int kms_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                            const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                            gnutls_pcert_st **pcert, unsigned int *pcert_length,
                            gnutls_privkey_t *privkey)
{
    struct kms_tls_identity *id = atomic_load_explicit(&kms_tls_current, memory_order_acquire);

    (void)session;
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    if (id == NULL)
        return -1;
    *pcert = id->ti_certs;
    *pcert_length = id->ti_count;
    *privkey = id->ti_key;
    return 0;
}

void *kms_tls_callback(void)
{
    return (void *)kms_tls_retrieve;
}

void kms_tls_shutdown(void)
{
    pthread_mutex_lock(&kms_tls_lock);
    kms_tls_identity_free(atomic_exchange(&kms_tls_current, NULL));
    while (kms_tls_retired != NULL) {
        struct kms_tls_identity *id = kms_tls_retired;

        kms_tls_retired = id->ti_retired;
        kms_tls_identity_free(id);
    }
    pthread_mutex_unlock(&kms_tls_lock);
}
