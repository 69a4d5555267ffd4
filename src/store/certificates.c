/*
 * certificates.c - the certificates table of the certificate manager (spec/actions.md H).
 *
 * A row holds the certificate's texts (CSR, certificate, chain, all public) and its key pair:
 * the public key as SubjectPublicKeyInfo DER, the private key only as the keystore wrapped it
 * (or nothing, when a token holds it). Tags live in the shared tags table under resource type
 * "certificate" and go with the row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db_internal.h"

#define KMS_CERT_COLUMNS                                                                           \
    "certificate_id, subject, sans, key_spec, protection, exportable, status, csr, certificate, "  \
    "chain, issuer, serial, not_before, not_after, signature_algorithm, ski, public_der, "         \
    "private_wrapped, created_at, updated_at"

/* The columns ListCertificates shows. */
#define KMS_CERT_LIST_COLUMNS                                                                      \
    "certificate_id, subject, issuer, status, key_spec, protection, not_before, not_after, "       \
    "created_at, updated_at"

/* Matches every row when a filter is NULL (bound as SQL NULL). */
#define KMS_CERT_FILTER                                                                            \
    "WHERE (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR issuer = ?2) AND "                      \
    "(?3 IS NULL OR status = ?3)"

void kms_cert_record_free(struct kms_cert_record *c)
{
    free(c->subject);
    free(c->sans);
    free(c->csr);
    free(c->certificate);
    free(c->chain);
    free(c->issuer);
    free(c->serial);
    free(c->signature_algorithm);
    free(c->ski);
    free(c->public_der);
    /* Wrapped, but wiped anyway: nothing of a private key lingers in freed memory. */
    if (c->private_wrapped != NULL)
        OPENSSL_cleanse(c->private_wrapped, c->private_wrapped_len);
    free(c->private_wrapped);
    memset(c, 0, sizeof(*c));
}

void kms_cert_records_free(struct kms_cert_record *list, size_t count)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        kms_cert_record_free(&list[i]);
    free(list);
}

static uint8_t *kms_cert_column_blob(sqlite3_stmt *st, int col, size_t *len, bool *oom)
{
    const void *p = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    uint8_t *copy;

    *len = 0;
    if (p == NULL || n <= 0)
        return NULL;
    copy = malloc((size_t)n);
    if (copy == NULL) {
        *oom = true;
        return NULL;
    }
    memcpy(copy, p, (size_t)n);
    *len = (size_t)n;
    return copy;
}

/* Reads the KMS_CERT_COLUMNS of the current row; false when memory runs out. */
static bool kms_cert_read_row(sqlite3_stmt *st, struct kms_cert_record *out)
{
    bool oom = false;

    memset(out, 0, sizeof(*out));
    kms_db_column_copy(st, 0, out->certificate_id, sizeof(out->certificate_id));
    out->subject = kms_db_column_strdup(st, 1);
    out->sans = kms_db_column_strdup(st, 2);
    out->spec = (enum kms_key_spec)sqlite3_column_int(st, 3);
    out->protection = (enum kms_protection)sqlite3_column_int(st, 4);
    out->exportable = sqlite3_column_int(st, 5) != 0;
    out->status = (enum kms_cert_status)sqlite3_column_int(st, 6);
    out->csr = kms_db_column_strdup(st, 7);
    out->certificate = kms_db_column_strdup(st, 8);
    out->chain = kms_db_column_strdup(st, 9);
    out->issuer = kms_db_column_strdup(st, 10);
    out->serial = kms_db_column_strdup(st, 11);
    out->not_before = sqlite3_column_int64(st, 12);
    out->not_after = sqlite3_column_int64(st, 13);
    out->signature_algorithm = kms_db_column_strdup(st, 14);
    out->ski = kms_db_column_strdup(st, 15);
    out->public_der = kms_cert_column_blob(st, 16, &out->public_der_len, &oom);
    out->private_wrapped = kms_cert_column_blob(st, 17, &out->private_wrapped_len, &oom);
    out->created_at = sqlite3_column_int64(st, 18);
    out->updated_at = sqlite3_column_int64(st, 19);
    return !oom && out->subject && out->sans && out->csr && out->certificate && out->chain &&
           out->issuer && out->serial && out->signature_algorithm && out->ski;
}

static const char *kms_cert_text(const char *s)
{
    return s ? s : "";
}

kms_err kms_store_cert_insert(struct kms_db *db, const struct kms_cert_record *c)
{
    static const char sql[] = "INSERT INTO certificates (" KMS_CERT_COLUMNS ") "
                              "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, c->certificate_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kms_cert_text(c->subject), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->sans ? c->sans : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, (int)c->spec);
    sqlite3_bind_int(st, 5, (int)c->protection);
    sqlite3_bind_int(st, 6, c->exportable ? 1 : 0);
    sqlite3_bind_int(st, 7, (int)c->status);
    sqlite3_bind_text(st, 8, kms_cert_text(c->csr), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, kms_cert_text(c->certificate), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, kms_cert_text(c->chain), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, kms_cert_text(c->issuer), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, kms_cert_text(c->serial), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 13, c->not_before);
    sqlite3_bind_int64(st, 14, c->not_after);
    sqlite3_bind_text(st, 15, kms_cert_text(c->signature_algorithm), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 16, kms_cert_text(c->ski), -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 17, c->public_der, (int)c->public_der_len, SQLITE_STATIC);
    if (c->private_wrapped != NULL)
        sqlite3_bind_blob(st, 18, c->private_wrapped, (int)c->private_wrapped_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 18);
    sqlite3_bind_int64(st, 19, c->created_at);
    sqlite3_bind_int64(st, 20, c->updated_at);
    return kms_db_exec_stmt(db, st, "certificate insert");
}

kms_err kms_store_cert_get(struct kms_db *db, const char *id, struct kms_cert_record *out)
{
    static const char sql[] =
        "SELECT " KMS_CERT_COLUMNS " FROM certificates WHERE certificate_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err = KMS_E_CERTIFICATE_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        err = kms_db_err(db, rc, "certificate get");
    } else if (!kms_cert_read_row(st, out)) {
        kms_cert_record_free(out);
        err = KMS_E_INTERNAL;
    }
    sqlite3_reset(st);
    return err;
}

kms_err kms_store_cert_update(struct kms_db *db, const struct kms_cert_record *c)
{
    static const char sql[] =
        "UPDATE certificates SET subject = ?, sans = ?, status = ?, certificate = ?, chain = ?, "
        "issuer = ?, serial = ?, not_before = ?, not_after = ?, signature_algorithm = ?, ski = ?, "
        "updated_at = ? WHERE certificate_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, kms_cert_text(c->subject), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->sans ? c->sans : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)c->status);
    sqlite3_bind_text(st, 4, kms_cert_text(c->certificate), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, kms_cert_text(c->chain), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, kms_cert_text(c->issuer), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, kms_cert_text(c->serial), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, c->not_before);
    sqlite3_bind_int64(st, 9, c->not_after);
    sqlite3_bind_text(st, 10, kms_cert_text(c->signature_algorithm), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, kms_cert_text(c->ski), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 12, c->updated_at);
    sqlite3_bind_text(st, 13, c->certificate_id, -1, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, "certificate update");
}

kms_err kms_store_cert_delete(struct kms_db *db, const char *id)
{
    static const char del_cert[] = "DELETE FROM certificates WHERE certificate_id = ?";
    kms_err rc = kms_store_tags_remove_all(db, "certificate", id);

    if (rc == KMS_OK)
        rc = kms_db_exec_text(db, del_cert, id, "certificate delete");
    if (rc == KMS_OK && sqlite3_changes(db->db_handle) == 0)
        rc = KMS_E_CERTIFICATE_NOT_FOUND;
    return rc;
}

kms_err kms_store_cert_count(struct kms_db *db, int64_t *out)
{
    static const char sql[] = "SELECT count(*) FROM certificates";

    return kms_db_count(db, kms_db_stmt(db, sql), out);
}

static void kms_cert_bind_filter(sqlite3_stmt *st, const struct kms_cert_filter *f)
{
    if (f->subject != NULL)
        sqlite3_bind_text(st, 1, f->subject, -1, SQLITE_STATIC);
    if (f->issuer != NULL)
        sqlite3_bind_text(st, 2, f->issuer, -1, SQLITE_STATIC);
    if (f->status >= 0)
        sqlite3_bind_int(st, 3, f->status);
}

kms_err kms_store_cert_list(struct kms_db *db, const struct kms_cert_filter *filter, int64_t offset,
                            int64_t limit, struct kms_cert_record **out, size_t *count,
                            int64_t *total)
{
    static const char count_sql[] = "SELECT count(*) FROM certificates " KMS_CERT_FILTER;
    static const char sql[] = "SELECT " KMS_CERT_LIST_COLUMNS " FROM certificates " KMS_CERT_FILTER
                              " ORDER BY created_at, rowid LIMIT ?4 OFFSET ?5";
    struct kms_cert_record *list = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st;
    kms_err err;
    int rc;

    *out = NULL;
    *count = 0;
    st = kms_db_stmt(db, count_sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    kms_cert_bind_filter(st, filter);
    err = kms_db_count(db, st, total);
    if (err != KMS_OK)
        return err;
    st = kms_db_stmt(db, sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    kms_cert_bind_filter(st, filter);
    sqlite3_bind_int64(st, 4, limit);
    sqlite3_bind_int64(st, 5, offset);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct kms_cert_record *c;

        if (n == cap) {
            struct kms_cert_record *grown;

            cap = cap ? cap * 2 : 16;
            grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL)
                goto oom;
            list = grown;
        }
        c = &list[n++];
        memset(c, 0, sizeof(*c));
        kms_db_column_copy(st, 0, c->certificate_id, sizeof(c->certificate_id));
        c->subject = kms_db_column_strdup(st, 1);
        c->issuer = kms_db_column_strdup(st, 2);
        c->status = (enum kms_cert_status)sqlite3_column_int(st, 3);
        c->spec = (enum kms_key_spec)sqlite3_column_int(st, 4);
        c->protection = (enum kms_protection)sqlite3_column_int(st, 5);
        c->not_before = sqlite3_column_int64(st, 6);
        c->not_after = sqlite3_column_int64(st, 7);
        c->created_at = sqlite3_column_int64(st, 8);
        c->updated_at = sqlite3_column_int64(st, 9);
        if (c->subject == NULL || c->issuer == NULL)
            goto oom;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        kms_cert_records_free(list, n);
        return kms_db_err(db, rc, "certificate list");
    }
    *out = list;
    *count = n;
    return KMS_OK;
oom:
    sqlite3_reset(st);
    kms_cert_records_free(list, n);
    return KMS_E_INTERNAL;
}
