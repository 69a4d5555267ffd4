/*
 * certificates.c - the certificate manager's lifecycle (spec/actions.md H1-H9): CreateCertificate,
 * UploadCertificate, ImportCertificate, ListCertificates, DescribeCertificate, GetCertificate,
 * ExportCertificate, UpdateCertificateStatus, DeleteCertificate; and what cert_crypto.c and
 * tags.c share: resolving a CertificateId, the status rules (the key pair is loaded and cached by
 * cert_keys.c).
 *
 * Key pairs live in the keystores like key versions do, under the reference
 * (key id "certificate/<CertificateId>", version id <CertificateId>), so the software keystore
 * wraps the private key with the master key bound to that name, and a PKCS#11 token (an
 * extension: ProtectionLevel=HSM on CreateCertificate) labels its objects
 * "kmsd/certificate/<id>/<id>". The CSR is signed through the keystore's sign operation; the
 * private key leaves its keystore only through ExportCertificate, encrypted under the caller's
 * passphrase, and only for exportable software keys. PKCS#12 imports are software keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "keystore/keystore.h"
#include "kms/cert.h"
#include "kms/log.h"

#define KMS_CERT_PASSPHRASE_MIN 8
#define KMS_CERT_PASSPHRASE_MAX 64

static const char *const kms_cert_status_names[] = {
    [KMS_CERT_PENDING] = "PENDING",
    [KMS_CERT_ACTIVE] = "ACTIVE",
    [KMS_CERT_INACTIVE] = "INACTIVE",
    [KMS_CERT_REVOKED] = "REVOKED",
};

const char *kms_cert_status_name(enum kms_cert_status status)
{
    if ((size_t)status >= KMS_ARRAY_LEN(kms_cert_status_names))
        return "";
    return kms_cert_status_names[status];
}

static bool kms_cert_status_parse(const char *s, enum kms_cert_status *out)
{
    for (size_t i = 0; i < KMS_ARRAY_LEN(kms_cert_status_names); i++) {
        if (strcmp(s, kms_cert_status_names[i]) == 0) {
            *out = (enum kms_cert_status)i;
            return true;
        }
    }
    return false;
}

/* The key specs a certificate can have (spec/algorithms.md §9). */
static bool kms_cert_spec_allowed(enum kms_key_spec spec)
{
    return spec == KMS_SPEC_RSA_2048 || spec == KMS_SPEC_EC_P256 || spec == KMS_SPEC_EC_SM2;
}

void kms_cert_ks_ref(const char *id, enum kms_key_spec spec, char key_ref[KMS_ID_MAX],
                     struct kms_ks_ref *ref)
{
    snprintf(key_ref, KMS_ID_MAX, "certificate/%s", id);
    ref->key_id = key_ref;
    ref->version_id = id;
    ref->spec = spec;
}

/* acs:kms:<region>:<account>:certificate/<id> -> <id>, when region and account are ours. */
static const char *kms_cert_id_of(const struct kms_call *call, const char *ref)
{
    char prefix[KMS_ARN_MAX];

    if (strncmp(ref, "acs:kms:", 8) != 0)
        return ref;
    kms_arn(call, "certificate", "", prefix, sizeof(prefix));
    if (strncmp(ref, prefix, strlen(prefix)) != 0)
        return NULL;
    return ref + strlen(prefix);
}

kms_err kms_cert_resolve(struct kms_call *call, const char *param, struct kms_cert_record *out)
{
    const char *ref, *id;
    kms_err rc;

    memset(out, 0, sizeof(*out));
    rc = kms_arg_required(call, param, &ref);
    if (rc != KMS_OK)
        return rc;
    id = kms_cert_id_of(call, ref);
    if (id == NULL || id[0] == '\0' || strlen(id) >= KMS_UUID_LEN)
        return KMS_E_CERTIFICATE_NOT_FOUND;
    rc = kms_store_cert_get(call->db, id, out);
    if (rc != KMS_OK)
        return rc;
    snprintf(call->resource, sizeof(call->resource), "certificate/%s", out->certificate_id);
    return KMS_OK;
}

kms_err kms_cert_check_status(const struct kms_cert_record *c, enum kms_cert_use use)
{
    switch (c->status) {
    case KMS_CERT_ACTIVE:
        return KMS_OK;
    case KMS_CERT_PENDING:
        return KMS_E_KEY_PENDING_IMPORT;
    case KMS_CERT_INACTIVE:
        return KMS_E_KEY_DISABLED;
    case KMS_CERT_REVOKED:
        /* A revoked certificate "can only verify signatures" [go-sdk]. */
        return use == KMS_CERT_USE_VERIFY ? KMS_OK : KMS_E_CERTIFICATE_REVOKED;
    }
    return KMS_E_INTERNAL;
}

/* Removes what a token holds for a certificate (after its row is gone or was never written). */
static void kms_cert_key_destroy(const char *id, enum kms_key_spec spec,
                                 enum kms_protection protection)
{
    struct kms_keystore *ks = kms_keystore_for(protection);
    char key_ref[KMS_ID_MAX];
    struct kms_ks_ref ref;

    if (ks == NULL || protection != KMS_PROTECTION_HSM)
        return;
    kms_cert_ks_ref(id, spec, key_ref, &ref);
    if (ks->ks_ops->ks_destroy(ks, &ref) != KMS_OK)
        kms_log_warn("certificates: the token objects of certificate %s were not destroyed", id);
}

static kms_err kms_cert_out_arn(struct kms_call *call, const char *id)
{
    char arn[KMS_ARN_MAX];

    kms_arn(call, "certificate", id, arn, sizeof(arn));
    return kms_out_str(call->out, "Arn", arn);
}

/* Quota: one more certificate must fit (read inside the write transaction to be exact). */
static kms_err kms_cert_quota(struct kms_call *call)
{
    int64_t count = 0;
    kms_err rc = kms_store_cert_count(call->db, &count);

    if (rc == KMS_OK && count >= call->cfg->max_certificates)
        rc = KMS_E_LIMIT_EXCEEDED;
    return rc;
}

/* ---- CreateCertificate ---- */

struct kms_cert_create {
    struct kms_dn dn;
    enum kms_key_spec spec;
    enum kms_protection protection;
    bool exportable;
    char **sans;
    size_t san_count;
    char *sans_json;
};

static void kms_cert_create_free(struct kms_cert_create *p)
{
    kms_dn_free(&p->dn);
    kms_store_free_list(p->sans, p->san_count);
    free(p->sans_json);
}

/* SubjectAlternativeNames: a JSON array of at most KMS_SAN_MAX distinct DNS names. */
static kms_err kms_cert_sans_parse(struct kms_call *call, const char *json,
                                   struct kms_cert_create *p)
{
    cJSON *root = cJSON_Parse(json);
    cJSON *out = NULL;
    int size = root != NULL && cJSON_IsArray(root) ? cJSON_GetArraySize(root) : -1;
    kms_err rc = KMS_OK;

    if (size < 0 || size > KMS_SAN_MAX)
        goto invalid;
    p->sans = calloc((size_t)size + 1, sizeof(*p->sans));
    out = cJSON_CreateArray();
    if (p->sans == NULL || out == NULL) {
        rc = KMS_E_INTERNAL;
        goto done;
    }
    for (cJSON *item = root->child; item != NULL; item = item->next) {
        if (!cJSON_IsString(item) || !kms_dns_name_valid(item->valuestring))
            goto invalid;
        for (size_t i = 0; i < p->san_count; i++)
            if (strcasecmp(p->sans[i], item->valuestring) == 0)
                goto invalid;
        p->sans[p->san_count] = strdup(item->valuestring);
        if (p->sans[p->san_count] == NULL ||
            !cJSON_AddItemToArray(out, cJSON_CreateString(item->valuestring))) {
            rc = KMS_E_INTERNAL;
            goto done;
        }
        p->san_count++;
    }
    p->sans_json = cJSON_PrintUnformatted(out);
    if (p->sans_json == NULL)
        rc = KMS_E_INTERNAL;
    goto done;
invalid:
    rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "SubjectAlternativeNames");
done:
    cJSON_Delete(out);
    cJSON_Delete(root);
    return rc;
}

static kms_err kms_cert_create_params(struct kms_call *call, struct kms_cert_create *p)
{
    const struct kms_key_spec_info *info;
    const char *subject, *spec, *sans = kms_arg(call, "SubjectAlternativeNames");
    const char *level = kms_arg(call, "ProtectionLevel");
    struct kms_keystore *ks;
    kms_err rc;

    rc = kms_arg_required(call, "Subject", &subject);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "KeySpec", &spec);
    if (rc != KMS_OK)
        return rc;
    rc = kms_dn_parse(subject, KMS_DN_SUBJECT, &p->dn);
    if (rc != KMS_OK)
        return rc == KMS_E_INVALID_PARAMETER ? kms_fail(call, rc, "Subject") : rc;
    info = kms_key_spec_by_name(spec);
    if (info == NULL || !kms_cert_spec_allowed(info->spec))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "KeySpec");
    p->spec = info->spec;
    if (sans != NULL) {
        rc = kms_cert_sans_parse(call, sans, p);
        if (rc != KMS_OK)
            return rc;
    }
    p->protection = KMS_PROTECTION_SOFTWARE;
    if (level != NULL && !kms_protection_parse(level, &p->protection))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "ProtectionLevel");
    /* A token's keys never leave it: HSM certificates are not exportable (default false). */
    rc = kms_arg_bool(call, "ExportablePrivateKey", p->protection == KMS_PROTECTION_SOFTWARE,
                      &p->exportable);
    if (rc != KMS_OK)
        return rc;
    if (p->exportable && p->protection == KMS_PROTECTION_HSM)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, "ExportablePrivateKey");
    ks = kms_keystore_for(p->protection);
    if (ks == NULL ||
        (info->national && call->cfg->gm_requires_hsm && p->protection != KMS_PROTECTION_HSM))
        return kms_fail(call, KMS_E_UNSUPPORTED_PROTECTION, "ProtectionLevel");
    if (!kms_keystore_supports(ks, p->spec, KMS_ORIGIN_KMS))
        return kms_fail(call, KMS_E_UNSUPPORTED_PROTECTION, "ProtectionLevel");
    return KMS_OK;
}

/* The CSR's signature, made by the keystore that holds the new private key. */
static kms_err kms_cert_csr_sign(void *arg, enum kms_sign_alg alg, const uint8_t *digest,
                                 size_t digest_len, struct kms_buf *sig)
{
    struct kms_ks_key *key = arg;

    return key->kk_ops->ks_sign(key, alg, digest, digest_len, sig);
}

/* Makes the key pair in its keystore and the CSR it signs; fills c's key and CSR fields. */
static kms_err kms_cert_make_pair(const struct kms_cert_create *p, struct kms_cert_record *c)
{
    struct kms_keystore *ks = kms_keystore_for(p->protection);
    struct kms_buf stored = {0}, public_der = {0}, csr = {0};
    struct kms_ks_key *key = NULL;
    char key_ref[KMS_ID_MAX];
    struct kms_ks_ref ref;
    kms_err rc;

    kms_cert_ks_ref(c->certificate_id, p->spec, key_ref, &ref);
    rc = ks->ks_ops->ks_create(ks, &ref, &stored, &public_der);
    if (rc == KMS_OK)
        rc = ks->ks_ops->ks_load(ks, &ref, (uint8_t *)stored.data, stored.len, &key);
    if (rc == KMS_OK)
        rc = kms_csr_create(&p->dn, (const char *const *)p->sans, p->san_count,
                            (uint8_t *)public_der.data, public_der.len, kms_cert_csr_sign, key,
                            &csr);
    if (key != NULL)
        key->kk_ops->ks_release(key);
    if (rc != KMS_OK) {
        kms_buf_free_secret(&stored);
        kms_buf_free(&public_der);
        kms_buf_free(&csr);
        kms_cert_key_destroy(c->certificate_id, p->spec, p->protection);
        return rc;
    }
    c->private_wrapped = stored.len > 0 ? (uint8_t *)stored.data : NULL;
    c->private_wrapped_len = stored.len;
    if (stored.len == 0)
        kms_buf_free(&stored);
    c->public_der = (uint8_t *)public_der.data;
    c->public_der_len = public_der.len;
    c->csr = csr.data;
    return KMS_OK;
}

kms_err kms_api_create_certificate(struct kms_call *call)
{
    struct kms_cert_create p;
    struct kms_cert_record c;
    struct kms_buf subject = {0};
    bool made = false;
    kms_err rc;

    memset(&p, 0, sizeof(p));
    memset(&c, 0, sizeof(c));
    rc = kms_cert_create_params(call, &p);
    if (rc != KMS_OK)
        goto out;
    /* Checked once before the (slow) key generation, and again where it counts. */
    rc = kms_cert_quota(call);
    if (rc == KMS_OK)
        rc = kms_dn_format(&p.dn, &subject);
    if (rc != KMS_OK) {
        if (rc == KMS_E_INVALID_PARAMETER)
            rc = kms_fail(call, rc, "Subject");
        goto out;
    }
    kms_uuid_generate(c.certificate_id);
    rc = kms_cert_make_pair(&p, &c);
    if (rc != KMS_OK)
        goto out;
    made = true;
    c.subject = subject.data;
    c.sans = p.sans_json;
    c.spec = p.spec;
    c.protection = p.protection;
    c.exportable = p.exportable;
    c.status = KMS_CERT_PENDING;
    c.created_at = c.updated_at = call->now;
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_cert_quota(call);
    if (rc == KMS_OK)
        rc = kms_store_cert_insert(call->db, &c);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    c.subject = NULL; /* owned by subject and p */
    c.sans = NULL;
    if (rc != KMS_OK)
        goto out;
    snprintf(call->resource, sizeof(call->resource), "certificate/%s", c.certificate_id);
    rc = kms_out_str(call->out, "CertificateId", c.certificate_id);
    if (rc == KMS_OK)
        rc = kms_cert_out_arn(call, c.certificate_id);
    if (rc == KMS_OK)
        rc = kms_out_str(call->out, "Csr", c.csr);
out:
    if (rc != KMS_OK && made) {
        kms_store_rollback(call->db);
        kms_cert_key_destroy(c.certificate_id, p.spec, p.protection);
    }
    kms_buf_free(&subject);
    kms_cert_record_free(&c);
    kms_cert_create_free(&p);
    return rc;
}

/* ---- UploadCertificate / ImportCertificate ---- */

/* Moves what kms_cert_check found into the record (which owns it afterwards). */
static void kms_cert_take_info(struct kms_cert_record *c, struct kms_cert_info *info)
{
    free(c->subject);
    free(c->sans);
    free(c->certificate);
    free(c->chain);
    free(c->issuer);
    free(c->serial);
    free(c->signature_algorithm);
    free(c->ski);
    c->subject = info->subject;
    c->sans = info->sans;
    c->certificate = info->certificate;
    c->chain = info->chain;
    c->issuer = info->issuer;
    c->serial = info->serial;
    c->signature_algorithm = info->signature_algorithm;
    c->ski = info->ski;
    c->not_before = info->not_before;
    c->not_after = info->not_after;
    info->subject = info->sans = info->certificate = info->chain = NULL;
    info->issuer = info->serial = info->signature_algorithm = info->ski = NULL;
}

/* Which certificates UploadCertificate may write: PENDING (issue) and ACTIVE (renewal). */
static kms_err kms_cert_check_uploadable(const struct kms_cert_record *c)
{
    if (c->status == KMS_CERT_PENDING)
        return KMS_OK;
    return kms_cert_check_status(c, KMS_CERT_USE_PRIVATE);
}

kms_err kms_api_upload_certificate(struct kms_call *call)
{
    struct kms_cert_record c;
    struct kms_cert_info info;
    enum kms_cert_fault fault = KMS_CERT_FAULT_NONE;
    char id[KMS_UUID_LEN];
    const char *pem;
    kms_err rc;

    memset(&info, 0, sizeof(info));
    rc = kms_arg_required(call, "Certificate", &pem);
    if (rc == KMS_OK)
        rc = kms_cert_resolve(call, "CertificateId", &c);
    if (rc != KMS_OK)
        return rc;
    rc = kms_cert_check_uploadable(&c);
    if (rc == KMS_OK) {
        rc = kms_cert_check(pem, kms_arg(call, "CertificateChain"), c.public_der, c.public_der_len,
                            call->now, &info, &fault);
        if (rc == KMS_E_INVALID_PARAMETER)
            rc = kms_fail(call, rc,
                          fault == KMS_CERT_FAULT_CHAIN ? "CertificateChain" : "Certificate");
    }
    memcpy(id, c.certificate_id, sizeof(id));
    kms_cert_record_free(&c);
    if (rc != KMS_OK)
        goto out;
    /* Read again under the write lock: the status may have changed meanwhile. */
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_cert_get(call->db, id, &c);
    if (rc != KMS_OK)
        goto out;
    rc = kms_cert_check_uploadable(&c);
    if (rc == KMS_OK) {
        kms_cert_take_info(&c, &info);
        c.status = KMS_CERT_ACTIVE;
        c.updated_at = call->now;
        rc = kms_store_cert_update(call->db, &c);
    }
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    kms_cert_record_free(&c);
out:
    kms_cert_info_free(&info);
    return rc;
}

kms_err kms_api_import_certificate(struct kms_call *call)
{
    struct kms_cert_record c;
    struct kms_cert_info info;
    struct kms_buf blob = {0}, pkcs8 = {0}, stored = {0}, key_public = {0};
    enum kms_cert_fault fault = KMS_CERT_FAULT_NONE;
    char *cert_pem = NULL, *chain_pem = NULL;
    const char *passphrase;
    char key_ref[KMS_ID_MAX];
    struct kms_ks_ref ref;
    kms_err rc;

    memset(&c, 0, sizeof(c));
    memset(&info, 0, sizeof(info));
    rc = kms_arg_base64(call, "PKCS12Blob", true, &blob, NULL);
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "Passphrase", &passphrase);
    if (rc == KMS_OK)
        rc = kms_cert_quota(call);
    if (rc != KMS_OK)
        goto out;
    rc = kms_pkcs12_open((uint8_t *)blob.data, blob.len, passphrase, &pkcs8, &cert_pem, &chain_pem);
    if (rc == KMS_OK)
        rc = kms_cert_check(cert_pem, chain_pem, NULL, 0, call->now, &info, &fault);
    if (rc == KMS_E_INVALID_PARAMETER)
        rc = kms_fail(call, rc, "PKCS12Blob");
    if (rc != KMS_OK)
        goto out;
    /* Software keys only: the national-algorithm rule cannot be met by an imported key. */
    if (info.spec == KMS_SPEC_EC_SM2 && call->cfg->gm_requires_hsm) {
        rc = kms_fail(call, KMS_E_UNSUPPORTED_PROTECTION, "ProtectionLevel");
        goto out;
    }
    kms_uuid_generate(c.certificate_id);
    kms_cert_ks_ref(c.certificate_id, info.spec, key_ref, &ref);
    rc = kms_keystore_wrap_private(&ref, (uint8_t *)pkcs8.data, pkcs8.len, &stored, &key_public);
    /* PKCS12_parse paired them already; the stored key must be the certificate's, byte for byte. */
    if (rc == KMS_OK && (key_public.len != info.public_der.len ||
                         memcmp(key_public.data, info.public_der.data, key_public.len) != 0))
        rc = KMS_E_INVALID_PARAMETER;
    if (rc == KMS_E_INVALID_PARAMETER)
        rc = kms_fail(call, rc, "PKCS12Blob");
    if (rc != KMS_OK)
        goto out;
    kms_cert_take_info(&c, &info);
    c.spec = info.spec;
    c.protection = KMS_PROTECTION_SOFTWARE;
    c.exportable = true; /* the key already existed outside [rec] */
    c.status = KMS_CERT_ACTIVE;
    c.csr = strdup("");
    c.public_der = (uint8_t *)key_public.data;
    c.public_der_len = key_public.len;
    c.private_wrapped = (uint8_t *)stored.data;
    c.private_wrapped_len = stored.len;
    memset(&key_public, 0, sizeof(key_public));
    memset(&stored, 0, sizeof(stored));
    c.created_at = c.updated_at = call->now;
    rc = c.csr != NULL ? kms_store_begin(call->db) : KMS_E_INTERNAL;
    if (rc == KMS_OK)
        rc = kms_cert_quota(call);
    if (rc == KMS_OK)
        rc = kms_store_cert_insert(call->db, &c);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    if (rc != KMS_OK)
        goto out;
    snprintf(call->resource, sizeof(call->resource), "certificate/%s", c.certificate_id);
    rc = kms_out_str(call->out, "CertificateId", c.certificate_id);
    if (rc == KMS_OK)
        rc = kms_cert_out_arn(call, c.certificate_id);
out:
    kms_buf_free_secret(&blob); /* the PKCS#12 holds the private key, however encrypted */
    kms_buf_free_secret(&pkcs8);
    kms_buf_free_secret(&stored);
    kms_buf_free(&key_public);
    free(cert_pem);
    free(chain_pem);
    kms_cert_info_free(&info);
    kms_cert_record_free(&c);
    return rc;
}

/* ---- ListCertificates / DescribeCertificate / GetCertificate ---- */

/*
 * A Subject/Issuer filter in the form kmsd writes names, so "CN = a, O=b,C=cn" finds "CN=a,O=b,
 * C=CN". Text that does not parse as a DN is compared as it is (it then matches nothing kmsd
 * wrote, unless it is exactly such a name).
 */
static kms_err kms_cert_filter_name(struct kms_call *call, const char *param, struct kms_buf *out)
{
    const char *text = kms_arg(call, param);
    struct kms_dn dn;
    kms_err rc;

    if (text == NULL)
        return KMS_OK;
    rc = kms_dn_parse(text, KMS_DN_ANY, &dn);
    if (rc == KMS_OK)
        rc = kms_dn_format(&dn, out);
    kms_dn_free(&dn);
    if (rc == KMS_E_INVALID_PARAMETER) {
        kms_buf_reset(out);
        rc = kms_buf_append_str(out, text);
    }
    return rc;
}

kms_err kms_api_list_certificates(struct kms_call *call)
{
    struct kms_cert_filter filter = {NULL, NULL, -1};
    struct kms_buf subject = {0}, issuer = {0};
    struct kms_cert_record *list = NULL;
    size_t count = 0;
    int64_t page = 1, size = 10, total = 0;
    const char *status = kms_arg(call, "Status");
    cJSON *items, *wrap;
    kms_err rc;

    rc = kms_arg_page(call, 10, &page, &size);
    if (rc == KMS_OK && status != NULL) {
        enum kms_cert_status s = KMS_CERT_PENDING;

        if (kms_cert_status_parse(status, &s))
            filter.status = (int)s;
        else
            rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Status");
    }
    if (rc == KMS_OK)
        rc = kms_cert_filter_name(call, "Subject", &subject);
    if (rc == KMS_OK)
        rc = kms_cert_filter_name(call, "Issuer", &issuer);
    if (rc != KMS_OK)
        goto out;
    filter.subject = subject.data;
    filter.issuer = issuer.data;
    rc = kms_store_cert_list(call->db, &filter, (page - 1) * size, size, &list, &count, &total);
    if (rc != KMS_OK)
        goto out;
    cJSON_AddNumberToObject(call->out, "PageNumber", (double)page);
    cJSON_AddNumberToObject(call->out, "PageSize", (double)size);
    /* This action's count field is TotalSize, not TotalCount [go-sdk 2021]. */
    cJSON_AddNumberToObject(call->out, "TotalSize", (double)total);
    wrap = cJSON_AddObjectToObject(call->out, "CertificateSummaryList");
    items = wrap ? cJSON_AddArrayToObject(wrap, "CertificateSummary") : NULL;
    if (items == NULL) {
        rc = KMS_E_INTERNAL;
        goto out;
    }
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        const struct kms_cert_record *c = &list[i];
        const struct kms_key_spec_info *info = kms_key_spec_get(c->spec);
        cJSON *item = cJSON_CreateObject();

        if (item == NULL || info == NULL || !cJSON_AddItemToArray(items, item)) {
            cJSON_Delete(item);
            rc = KMS_E_INTERNAL;
            break;
        }
        rc |= kms_out_str(item, "CertificateId", c->certificate_id);
        rc |= kms_out_str(item, "Subject", c->subject);
        rc |= kms_out_str(item, "Issuer", c->issuer);
        rc |= kms_out_str(item, "Status", kms_cert_status_name(c->status));
        rc |= kms_out_str(item, "KeySpec", info->name);
        rc |= kms_out_str(item, "ProtectionLevel", kms_protection_name(c->protection));
        rc |= kms_out_time(item, "NotBefore", c->not_before);
        rc |= kms_out_time(item, "NotAfter", c->not_after);
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
    }
out:
    kms_cert_records_free(list, count);
    kms_buf_free(&subject);
    kms_buf_free(&issuer);
    return rc;
}

/* Tags: {"Tag": [{"TagKey", "TagValue"}]} (the wrapped list shape of the other actions). */
static kms_err kms_cert_out_tags(struct kms_call *call, const char *id)
{
    struct kms_tag *tags = NULL;
    size_t count = 0;
    cJSON *list;
    kms_err rc = kms_store_tags_get(call->db, "certificate", id, &tags, &count);

    if (rc != KMS_OK)
        return rc;
    list = kms_out_list(call->out, "Tags", "Tag");
    if (list == NULL)
        rc = KMS_E_INTERNAL;
    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        cJSON *item = kms_out_item(list);

        if (item == NULL) {
            rc = KMS_E_INTERNAL;
            break;
        }
        rc |= kms_out_str(item, "TagKey", tags[i].key);
        rc |= kms_out_str(item, "TagValue", tags[i].value);
        if (rc != KMS_OK)
            rc = KMS_E_INTERNAL;
    }
    kms_tags_free(tags, count);
    return rc;
}

kms_err kms_api_describe_certificate(struct kms_call *call)
{
    struct kms_cert_record c;
    const struct kms_key_spec_info *info;
    struct kms_buf pem = {0};
    cJSON *sans;
    kms_err rc;

    rc = kms_cert_resolve(call, "CertificateId", &c);
    if (rc != KMS_OK)
        return rc;
    info = kms_key_spec_get(c.spec);
    sans = cJSON_Parse(c.sans);
    if (info == NULL || sans == NULL || !cJSON_IsArray(sans)) {
        kms_log_error("certificates: certificate %s has a broken record", c.certificate_id);
        rc = KMS_E_INTERNAL;
        goto out;
    }
    rc = kms_pkey_public_pem(c.public_der, c.public_der_len, &pem);
    rc |= kms_out_str(call->out, "CertificateId", c.certificate_id);
    rc |= kms_cert_out_arn(call, c.certificate_id);
    rc |= kms_out_str(call->out, "Subject", c.subject);
    if (rc == KMS_OK) {
        /* A bare array [go-sdk 2024]. */
        cJSON_AddItemToObject(call->out, "SubjectAlternativeNames", sans);
        sans = NULL;
    }
    rc |= kms_out_str(call->out, "Issuer", c.issuer);
    rc |= kms_out_str(call->out, "Serial", c.serial);
    rc |= kms_out_time(call->out, "NotBefore", c.not_before);
    rc |= kms_out_time(call->out, "NotAfter", c.not_after);
    rc |= kms_out_str(call->out, "KeySpec", info->name);
    rc |= kms_out_str(call->out, "ProtectionLevel", kms_protection_name(c.protection));
    rc |= kms_out_str(call->out, "SignatureAlgorithm", c.signature_algorithm);
    if (rc == KMS_OK &&
        cJSON_AddBoolToObject(call->out, "ExportablePrivateKey", c.exportable) == NULL)
        rc = KMS_E_INTERNAL;
    rc |= kms_out_str(call->out, "Status", kms_cert_status_name(c.status));
    rc |= kms_out_str(call->out, "SubjectKeyIdentifier", c.ski);
    rc |= kms_out_str(call->out, "SubjectPublicKey", pem.data);
    rc |= kms_out_time(call->out, "CreatedAt", c.created_at);
    rc |= kms_out_time(call->out, "UpdatedAt", c.updated_at);
    if (rc != KMS_OK)
        rc = KMS_E_INTERNAL;
    else
        rc = kms_cert_out_tags(call, c.certificate_id);
out:
    cJSON_Delete(sans);
    kms_buf_free(&pem);
    kms_cert_record_free(&c);
    return rc;
}

kms_err kms_api_get_certificate(struct kms_call *call)
{
    struct kms_cert_record c;
    kms_err rc;

    rc = kms_cert_resolve(call, "CertificateId", &c);
    if (rc != KMS_OK)
        return rc;
    rc |= kms_out_str(call->out, "CertificateId", c.certificate_id);
    rc |= kms_out_str(call->out, "Certificate", c.certificate);
    rc |= kms_out_str(call->out, "CertificateChain", c.chain);
    rc |= kms_out_str(call->out, "Csr", c.csr);
    kms_cert_record_free(&c);
    return rc == KMS_OK ? KMS_OK : KMS_E_INTERNAL;
}

/* ---- ExportCertificate ---- */

kms_err kms_api_export_certificate(struct kms_call *call)
{
    struct kms_cert_record c;
    struct kms_cert_key *key = NULL;
    struct kms_buf pkcs8 = {0}, out = {0};
    const char *format, *passphrase;
    bool pkcs12 = false;
    kms_err rc;

    memset(&c, 0, sizeof(c));
    rc = kms_arg_required(call, "ExportFormat", &format);
    if (rc == KMS_OK) {
        pkcs12 = strcasecmp(format, "PKCS12") == 0;
        if (!pkcs12 && strcasecmp(format, "PEM") != 0)
            rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "ExportFormat");
    }
    if (rc == KMS_OK)
        rc = kms_arg_required(call, "Passphrase", &passphrase);
    if (rc == KMS_OK)
        rc = kms_check_length(call, "Passphrase", passphrase, KMS_CERT_PASSPHRASE_MIN,
                              KMS_CERT_PASSPHRASE_MAX);
    if (rc == KMS_OK)
        rc = kms_cert_resolve(call, "CertificateId", &c);
    if (rc != KMS_OK)
        goto out;
    if (!c.exportable) {
        rc = kms_fail(call, KMS_E_NO_PERMISSION, "ExportablePrivateKey");
        goto out;
    }
    rc = kms_cert_check_status(&c, KMS_CERT_USE_PRIVATE);
    if (rc == KMS_OK)
        rc = kms_cert_key_get(&c, KMS_CERT_PRIVATE, &key);
    if (rc == KMS_OK)
        rc = kms_keystore_export_private(key->ck_private, &pkcs8);
    if (rc == KMS_OK && pkcs12)
        rc = kms_pkcs12_create((uint8_t *)pkcs8.data, pkcs8.len, c.certificate, c.chain, passphrase,
                               c.certificate_id, &out);
    else if (rc == KMS_OK)
        rc = kms_pkcs8_encrypt_pem((uint8_t *)pkcs8.data, pkcs8.len, passphrase, &out);
    if (rc != KMS_OK)
        goto out;
    rc |= kms_out_str(call->out, "CertificateId", c.certificate_id);
    rc |= kms_out_str(call->out, "Certificate", c.certificate);
    rc |= kms_out_str(call->out, "CertificateChain", c.chain);
    if (pkcs12)
        rc |= kms_out_b64(call->out, "PKCS12Blob", (uint8_t *)out.data, out.len);
    else
        rc |= kms_out_str(call->out, "PrivateKey", out.data);
    if (rc != KMS_OK)
        rc = KMS_E_INTERNAL;
out:
    kms_cert_key_put(key);
    kms_buf_free_secret(&pkcs8);
    kms_buf_free_secret(&out);
    kms_cert_record_free(&c);
    return rc;
}

/* ---- UpdateCertificateStatus / DeleteCertificate ---- */

/* ACTIVE <-> INACTIVE, both -> REVOKED; the same status again is a no-op (spec H8). */
static kms_err kms_cert_transition(enum kms_cert_status from, enum kms_cert_status to, bool *change)
{
    *change = false;
    if (to == KMS_CERT_PENDING)
        return KMS_E_STATE_MODIFIED_FAILED;
    if (from == to)
        return KMS_OK;
    if (from == KMS_CERT_PENDING || from == KMS_CERT_REVOKED)
        return KMS_E_STATE_MODIFIED_FAILED;
    *change = true;
    return KMS_OK;
}

kms_err kms_api_update_certificate_status(struct kms_call *call)
{
    struct kms_cert_record c;
    enum kms_cert_status to = KMS_CERT_PENDING;
    const char *status;
    char id[KMS_UUID_LEN];
    bool change = false;
    kms_err rc;

    rc = kms_arg_required(call, "Status", &status);
    if (rc == KMS_OK && !kms_cert_status_parse(status, &to))
        rc = kms_fail(call, KMS_E_INVALID_PARAMETER, "Status");
    if (rc == KMS_OK)
        rc = kms_cert_resolve(call, "CertificateId", &c);
    if (rc != KMS_OK)
        return rc;
    memcpy(id, c.certificate_id, sizeof(id));
    kms_cert_record_free(&c);
    /* The transition is decided on the row as it is under the write lock. */
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_cert_get(call->db, id, &c);
    if (rc != KMS_OK)
        return rc;
    rc = kms_cert_transition(c.status, to, &change);
    if (rc == KMS_OK && change) {
        c.status = to;
        c.updated_at = call->now;
        rc = kms_store_cert_update(call->db, &c);
        if (rc == KMS_OK)
            rc = kms_store_commit(call->db);
    }
    if (!change)
        kms_store_rollback(call->db); /* nothing written */
    kms_cert_record_free(&c);
    return rc;
}

kms_err kms_api_delete_certificate(struct kms_call *call)
{
    struct kms_cert_record c;
    kms_err rc;

    rc = kms_cert_resolve(call, "CertificateId", &c);
    if (rc != KMS_OK)
        return rc;
    rc = kms_store_begin(call->db);
    if (rc == KMS_OK)
        rc = kms_store_cert_delete(call->db, c.certificate_id);
    if (rc == KMS_OK)
        rc = kms_store_commit(call->db);
    /* Token objects go once the row is gone: a crash in between leaves only an orphan object. */
    if (rc == KMS_OK) {
        kms_cert_key_invalidate(c.certificate_id);
        kms_cert_key_destroy(c.certificate_id, c.spec, c.protection);
    }
    kms_cert_record_free(&c);
    return rc;
}
