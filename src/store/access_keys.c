/*
 * access_keys.c - the access_keys table. Secrets are stored sealed by the master key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db_internal.h"

void kms_access_key_record_free(struct kms_access_key_record *a)
{
    if (a->secret_wrapped)
        OPENSSL_cleanse(a->secret_wrapped, a->secret_wrapped_len);
    free(a->secret_wrapped);
    free(a->description);
    a->secret_wrapped = NULL;
    a->description = NULL;
}

kms_err kms_store_access_key_insert(struct kms_db *db, const struct kms_access_key_record *a)
{
    static const char sql[] = "INSERT INTO access_keys (access_key_id, secret_wrapped, admin, "
                              "aap_name, description, enabled, created_at) VALUES (?,?,?,?,?,?,?)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, a->access_key_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->secret_wrapped, (int)a->secret_wrapped_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, a->admin);
    sqlite3_bind_text(st, 4, a->aap_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->description ? a->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, a->enabled);
    sqlite3_bind_int64(st, 7, a->created_at);
    return kms_db_exec_stmt(db, st, "access key insert");
}

kms_err kms_store_access_key_get(struct kms_db *db, const char *id,
                                 struct kms_access_key_record *out)
{
    static const char sql[] = "SELECT access_key_id, secret_wrapped, admin, aap_name, "
                              "description, enabled, created_at FROM access_keys "
                              "WHERE access_key_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err = KMS_E_ACCESS_KEY_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        err = kms_db_err(db, rc, "access key get");
    } else {
        int n = sqlite3_column_bytes(st, 1);

        kms_db_column_copy(st, 0, out->access_key_id, sizeof(out->access_key_id));
        out->secret_wrapped = malloc(n > 0 ? (size_t)n : 1);
        if (out->secret_wrapped && n > 0)
            memcpy(out->secret_wrapped, sqlite3_column_blob(st, 1), (size_t)n);
        out->secret_wrapped_len = (size_t)n;
        out->admin = sqlite3_column_int(st, 2) != 0;
        kms_db_column_copy(st, 3, out->aap_name, sizeof(out->aap_name));
        out->description = kms_db_column_strdup(st, 4);
        out->enabled = sqlite3_column_int(st, 5) != 0;
        out->created_at = sqlite3_column_int64(st, 6);
        if (out->secret_wrapped == NULL || out->description == NULL) {
            kms_access_key_record_free(out);
            err = KMS_E_INTERNAL;
        }
    }
    sqlite3_reset(st);
    return err;
}

kms_err kms_store_access_key_count(struct kms_db *db, bool admin_only, int64_t *out)
{
    static const char sql[] = "SELECT count(*) FROM access_keys WHERE admin = 1 OR NOT ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st != NULL)
        sqlite3_bind_int(st, 1, admin_only);
    return kms_db_count(db, st, out);
}

kms_err kms_store_access_key_set_enabled(struct kms_db *db, const char *id, bool enabled)
{
    static const char sql[] = "UPDATE access_keys SET enabled = ? WHERE access_key_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int(st, 1, enabled);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = kms_db_exec_stmt(db, st, "access key update");
    if (rc == KMS_OK && sqlite3_changes(db->db_handle) == 0)
        return KMS_E_ACCESS_KEY_NOT_FOUND;
    return rc;
}

kms_err kms_store_access_key_delete(struct kms_db *db, const char *id)
{
    static const char sql[] = "DELETE FROM access_keys WHERE access_key_id = ?";
    kms_err rc = kms_db_exec_text(db, sql, id, "access key delete");
    if (rc == KMS_OK && sqlite3_changes(db->db_handle) == 0)
        return KMS_E_ACCESS_KEY_NOT_FOUND;
    return rc;
}

void kms_store_free_access_keys(struct kms_access_key_record *a, size_t count)
{
    for (size_t i = 0; a != NULL && i < count; i++)
        kms_access_key_record_free(&a[i]);
    free(a);
}

kms_err kms_store_access_key_list(struct kms_db *db, const char *aap_name, int64_t offset,
                                  int64_t limit, struct kms_access_key_record **out, size_t *count,
                                  int64_t *total)
{
    static const char count_sql[] = "SELECT count(*) FROM access_keys WHERE admin = 0 AND "
                                    "(?1 IS NULL OR aap_name = ?1)";
    static const char list_sql[] = "SELECT access_key_id, aap_name, description, enabled, "
                                   "created_at FROM access_keys WHERE admin = 0 AND "
                                   "(?1 IS NULL OR aap_name = ?1) "
                                   "ORDER BY created_at, rowid LIMIT ?2 OFFSET ?3";
    struct kms_access_key_record *list;
    sqlite3_stmt *st = kms_db_stmt(db, count_sql);
    size_t n = 0;
    kms_err err;
    int rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    if (aap_name != NULL)
        sqlite3_bind_text(st, 1, aap_name, -1, SQLITE_STATIC);
    err = kms_db_count(db, st, total);
    if (err != KMS_OK)
        return err;
    st = kms_db_stmt(db, list_sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    if (aap_name != NULL)
        sqlite3_bind_text(st, 1, aap_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
    list = calloc(limit > 0 ? (size_t)limit : 1, sizeof(*list));
    if (list == NULL) {
        sqlite3_reset(st);
        return KMS_E_INTERNAL;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (int64_t)n < limit) {
        struct kms_access_key_record *a = &list[n++];

        kms_db_column_copy(st, 0, a->access_key_id, sizeof(a->access_key_id));
        kms_db_column_copy(st, 1, a->aap_name, sizeof(a->aap_name));
        a->description = kms_db_column_strdup(st, 2);
        a->enabled = sqlite3_column_int(st, 3) != 0;
        a->created_at = sqlite3_column_int64(st, 4);
        if (a->description == NULL) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        kms_store_free_access_keys(list, n);
        return rc == SQLITE_NOMEM ? KMS_E_INTERNAL : kms_db_err(db, rc, "access key list");
    }
    *out = list;
    *count = n;
    return KMS_OK;
}

kms_err kms_store_access_key_count_aap(struct kms_db *db, const char *aap_name, int64_t *out)
{
    static const char sql[] = "SELECT count(*) FROM access_keys WHERE admin = 0 AND aap_name = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st != NULL)
        sqlite3_bind_text(st, 1, aap_name, -1, SQLITE_STATIC);
    return kms_db_count(db, st, out);
}

kms_err kms_store_access_keys_all(struct kms_db *db, char ***ids, size_t *count)
{
    static const char sql[] = "SELECT access_key_id FROM access_keys ORDER BY created_at, rowid";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    return kms_db_collect_ids(db, st, ids, count);
}

kms_err kms_store_access_key_set_secret(struct kms_db *db, const char *id, const uint8_t *wrapped,
                                        size_t len)
{
    static const char sql[] = "UPDATE access_keys SET secret_wrapped = ? WHERE access_key_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_blob(st, 1, wrapped, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, "access key set secret");
}
