/*
 * secrets.c - the secrets, secret_versions and secret_stages tables of the secrets manager.
 *
 * Values reach this file only sealed (a data key sealed under the CMK and the value sealed under
 * that data key): the store never sees a secret value. Stage labels are rows keyed by
 * (secret, label), so a label can be on one version only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db_internal.h"

#define KMS_SECRET_COLUMNS                                                                         \
    "secret_name, description, encryption_key_id, secret_type, created_at, updated_at, delete_at"

/* A secret counts as gone once its PlannedDeleteTime has passed, sweeper or not. */
#define KMS_SECRET_LIVE "(delete_at = 0 OR delete_at > ?)"

void kms_secret_record_free(struct kms_secret_record *s)
{
    free(s->description);
    s->description = NULL;
}

void kms_secret_records_free(struct kms_secret_record *list, size_t count)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        kms_secret_record_free(&list[i]);
    free(list);
}

void kms_secret_version_record_free(struct kms_secret_version_record *v)
{
    /* Sealed, but wiped anyway: nothing of a secret lingers in freed memory. */
    if (v->data_key)
        OPENSSL_cleanse(v->data_key, v->data_key_len);
    if (v->sealed_value)
        OPENSSL_cleanse(v->sealed_value, v->sealed_value_len);
    free(v->data_key);
    free(v->sealed_value);
    v->data_key = v->sealed_value = NULL;
    v->data_key_len = v->sealed_value_len = 0;
}

void kms_secret_version_records_free(struct kms_secret_version_record *list, size_t count)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        kms_secret_version_record_free(&list[i]);
    free(list);
}

/* Reads the KMS_SECRET_COLUMNS of the current row; false when memory runs out. */
static bool kms_secret_read_row(sqlite3_stmt *st, struct kms_secret_record *out)
{
    memset(out, 0, sizeof(*out));
    kms_db_column_copy(st, 0, out->name, sizeof(out->name));
    out->description = kms_db_column_strdup(st, 1);
    kms_db_column_copy(st, 2, out->key_id, sizeof(out->key_id));
    kms_db_column_copy(st, 3, out->secret_type, sizeof(out->secret_type));
    out->created_at = sqlite3_column_int64(st, 4);
    out->updated_at = sqlite3_column_int64(st, 5);
    out->delete_at = sqlite3_column_int64(st, 6);
    return out->description != NULL;
}

kms_err kms_store_secret_insert(struct kms_db *db, const struct kms_secret_record *s)
{
    static const char sql[] = "INSERT INTO secrets (" KMS_SECRET_COLUMNS ") VALUES (?,?,?,?,?,?,?)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->description ? s->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->key_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, s->secret_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, s->created_at);
    sqlite3_bind_int64(st, 6, s->updated_at);
    sqlite3_bind_int64(st, 7, s->delete_at);
    return kms_db_exec_stmt(db, st, "secret insert");
}

kms_err kms_store_secret_get(struct kms_db *db, const char *name, struct kms_secret_record *out)
{
    static const char sql[] = "SELECT " KMS_SECRET_COLUMNS " FROM secrets WHERE secret_name = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        err = KMS_E_RESOURCE_NOT_FOUND;
    else if (rc != SQLITE_ROW)
        err = kms_db_err(db, rc, "secret get");
    else if (!kms_secret_read_row(st, out))
        err = KMS_E_INTERNAL;
    sqlite3_reset(st);
    return err;
}

kms_err kms_store_secret_update(struct kms_db *db, const struct kms_secret_record *s)
{
    static const char sql[] = "UPDATE secrets SET description = ?, updated_at = ?, delete_at = ? "
                              "WHERE secret_name = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, s->description ? s->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, s->updated_at);
    sqlite3_bind_int64(st, 3, s->delete_at);
    sqlite3_bind_text(st, 4, s->name, -1, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, "secret update");
}

kms_err kms_store_secret_delete(struct kms_db *db, const char *name)
{
    static const char del_secret[] = "DELETE FROM secrets WHERE secret_name = ?";
    kms_err rc = kms_store_tags_remove_all(db, "secret", name);

    /* Versions go with the secret, stage labels with their versions (ON DELETE CASCADE). */
    return rc == KMS_OK ? kms_db_exec_text(db, del_secret, name, "secret delete") : rc;
}

kms_err kms_store_secret_count(struct kms_db *db, int64_t now, int64_t *out)
{
    static const char sql[] = "SELECT count(*) FROM secrets WHERE " KMS_SECRET_LIVE;
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st != NULL)
        sqlite3_bind_int64(st, 1, now);
    return kms_db_count(db, st, out);
}

/* The WHERE clause of a filtered listing: one AND term per filter, one OR term per value. */
static kms_err kms_secret_filter_sql(const struct kms_secret_filter *filters, size_t filter_count,
                                     struct kms_buf *sql)
{
    static const char *const term[] = {
        [KMS_SECRET_FILTER_NAME] = "instr(s.secret_name, ?) > 0",
        [KMS_SECRET_FILTER_DESCRIPTION] = "instr(s.description, ?) > 0",
        [KMS_SECRET_FILTER_TAG_KEY] =
            "EXISTS (SELECT 1 FROM tags t WHERE t.resource_type = 'secret' AND "
            "t.resource_id = s.secret_name AND t.tag_key = ?)",
        [KMS_SECRET_FILTER_TAG_VALUE] =
            "EXISTS (SELECT 1 FROM tags t WHERE t.resource_type = 'secret' AND "
            "t.resource_id = s.secret_name AND t.tag_value = ?)",
        [KMS_SECRET_FILTER_TYPE] = "s.secret_type = ?",
    };
    kms_err rc = kms_buf_append_str(sql, " WHERE (s.delete_at = 0 OR s.delete_at > ?)");

    for (size_t i = 0; rc == KMS_OK && i < filter_count; i++) {
        if ((size_t)filters[i].kind >= KMS_ARRAY_LEN(term) || filters[i].count == 0)
            return KMS_E_INTERNAL;
        rc = kms_buf_append_str(sql, " AND (");
        for (size_t j = 0; rc == KMS_OK && j < filters[i].count; j++) {
            if (j > 0)
                rc = kms_buf_append_str(sql, " OR ");
            if (rc == KMS_OK)
                rc = kms_buf_append_str(sql, term[filters[i].kind]);
        }
        if (rc == KMS_OK)
            rc = kms_buf_append_str(sql, ")");
    }
    return rc;
}

/* Binds now and every filter value in the order kms_secret_filter_sql wrote them. */
static int kms_secret_filter_bind(sqlite3_stmt *st, int64_t now,
                                  const struct kms_secret_filter *filters, size_t filter_count)
{
    int n = 1;

    sqlite3_bind_int64(st, n++, now);
    for (size_t i = 0; i < filter_count; i++)
        for (size_t j = 0; j < filters[i].count; j++)
            sqlite3_bind_text(st, n++, filters[i].values[j], -1, SQLITE_STATIC);
    return n;
}

kms_err kms_store_secret_list(struct kms_db *db, int64_t now,
                              const struct kms_secret_filter *filters, size_t filter_count,
                              int64_t offset, int64_t limit, struct kms_secret_record **out,
                              size_t *count, int64_t *total)
{
    struct kms_buf where = {0}, sql = {0};
    struct kms_secret_record *list = NULL;
    sqlite3_stmt *st = NULL;
    size_t n = 0, cap = 0;
    int rc, next;
    kms_err err;

    *out = NULL;
    *count = 0;
    *total = 0;
    /* Filters vary per request, so these statements are prepared each time, not cached. */
    err = kms_secret_filter_sql(filters, filter_count, &where);
    if (err == KMS_OK)
        err = kms_buf_printf(&sql, "SELECT count(*) FROM secrets s%s", where.data);
    if (err != KMS_OK)
        goto out;
    if (sqlite3_prepare_v2(db->db_handle, sql.data, -1, &st, NULL) != SQLITE_OK) {
        err = kms_db_err(db, SQLITE_ERROR, "secret count");
        goto out;
    }
    kms_secret_filter_bind(st, now, filters, filter_count);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        err = kms_db_err(db, rc, "secret count");
        goto out;
    }
    *total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    kms_buf_reset(&sql);
    err = kms_buf_printf(&sql,
                         "SELECT s.secret_name, s.description, s.encryption_key_id, s.secret_type, "
                         "s.created_at, s.updated_at, s.delete_at FROM secrets s%s "
                         "ORDER BY s.created_at, s.rowid LIMIT ? OFFSET ?",
                         where.data);
    if (err != KMS_OK)
        goto out;
    if (sqlite3_prepare_v2(db->db_handle, sql.data, -1, &st, NULL) != SQLITE_OK) {
        err = kms_db_err(db, SQLITE_ERROR, "secret list");
        goto out;
    }
    next = kms_secret_filter_bind(st, now, filters, filter_count);
    sqlite3_bind_int64(st, next, limit);
    sqlite3_bind_int64(st, next + 1, offset);
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (n == cap) {
            struct kms_secret_record *grown;
            cap = cap ? cap * 2 : 16;
            grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL) {
                err = KMS_E_INTERNAL;
                goto out;
            }
            list = grown;
        }
        if (!kms_secret_read_row(st, &list[n++])) {
            err = KMS_E_INTERNAL;
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        err = kms_db_err(db, rc, "secret list");
        goto out;
    }
    *out = list;
    *count = n;
    list = NULL;
    n = 0;
out:
    sqlite3_finalize(st);
    kms_secret_records_free(list, n);
    kms_buf_free(&where);
    kms_buf_free(&sql);
    return err;
}

kms_err kms_store_secrets_due(struct kms_db *db, int64_t now, char ***names, size_t *count)
{
    static const char sql[] =
        "SELECT secret_name FROM secrets WHERE delete_at > 0 AND delete_at <= ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int64(st, 1, now);
    return kms_db_collect_ids(db, st, names, count);
}

kms_err kms_store_secret_version_insert(struct kms_db *db, const char *name,
                                        const struct kms_secret_version_record *v)
{
    static const char sql[] = "INSERT INTO secret_versions (secret_name, version_id, created_at, "
                              "data_type, data_key, sealed_value) VALUES (?,?,?,?,?,?)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v->version_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, v->created_at);
    sqlite3_bind_text(st, 4, v->data_type, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, v->data_key, (int)v->data_key_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, v->sealed_value, (int)v->sealed_value_len, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, "secret version insert");
}

static uint8_t *kms_secret_blobdup(sqlite3_stmt *st, int col, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    uint8_t *copy;

    *len = 0;
    if (p == NULL || n <= 0)
        return NULL;
    copy = malloc((size_t)n);
    if (copy == NULL)
        return NULL;
    memcpy(copy, p, (size_t)n);
    *len = (size_t)n;
    return copy;
}

kms_err kms_store_secret_version_get(struct kms_db *db, const char *name, const char *version_id,
                                     struct kms_secret_version_record *out)
{
    static const char sql[] = "SELECT version_id, created_at, data_type, data_key, sealed_value "
                              "FROM secret_versions WHERE secret_name = ? AND version_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, version_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err = KMS_E_RESOURCE_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        err = kms_db_err(db, rc, "secret version get");
    } else {
        kms_db_column_copy(st, 0, out->version_id, sizeof(out->version_id));
        out->created_at = sqlite3_column_int64(st, 1);
        kms_db_column_copy(st, 2, out->data_type, sizeof(out->data_type));
        out->data_key = kms_secret_blobdup(st, 3, &out->data_key_len);
        out->sealed_value = kms_secret_blobdup(st, 4, &out->sealed_value_len);
        /* Both columns are NOT NULL and never empty: NULL here means memory ran out. */
        if (out->data_key == NULL || out->sealed_value == NULL) {
            kms_secret_version_record_free(out);
            err = KMS_E_INTERNAL;
        }
    }
    sqlite3_reset(st);
    return err;
}

kms_err kms_store_secret_version_list(struct kms_db *db, const char *name, bool include_deprecated,
                                      int64_t offset, int64_t limit,
                                      struct kms_secret_version_record **out, size_t *count,
                                      int64_t *total)
{
    static const char count_sql[] =
        "SELECT count(*) FROM secret_versions v WHERE v.secret_name = ?1 AND (?2 OR EXISTS "
        "(SELECT 1 FROM secret_stages g WHERE g.secret_name = ?1 AND g.version_id = v.version_id))";
    static const char list_sql[] =
        "SELECT v.version_id, v.created_at, v.data_type FROM secret_versions v "
        "WHERE v.secret_name = ?1 AND (?2 OR EXISTS (SELECT 1 FROM secret_stages g "
        "WHERE g.secret_name = ?1 AND g.version_id = v.version_id)) "
        "ORDER BY v.created_at, v.rowid LIMIT ?3 OFFSET ?4";
    struct kms_secret_version_record *list = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st = kms_db_stmt(db, count_sql);
    kms_err err;
    int rc;

    *out = NULL;
    *count = 0;
    if (st != NULL) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, include_deprecated);
    }
    err = kms_db_count(db, st, total);
    if (err != KMS_OK)
        return err;
    st = kms_db_stmt(db, list_sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, include_deprecated);
    sqlite3_bind_int64(st, 3, limit);
    sqlite3_bind_int64(st, 4, offset);
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (n == cap) {
            struct kms_secret_version_record *grown;
            cap = cap ? cap * 2 : 16;
            grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL) {
                sqlite3_reset(st);
                kms_secret_version_records_free(list, n);
                return KMS_E_INTERNAL;
            }
            list = grown;
        }
        memset(&list[n], 0, sizeof(list[n]));
        kms_db_column_copy(st, 0, list[n].version_id, sizeof(list[n].version_id));
        list[n].created_at = sqlite3_column_int64(st, 1);
        kms_db_column_copy(st, 2, list[n].data_type, sizeof(list[n].data_type));
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        kms_secret_version_records_free(list, n);
        return kms_db_err(db, rc, "secret version list");
    }
    *out = list;
    *count = n;
    return KMS_OK;
}

kms_err kms_store_secret_versions_prune(struct kms_db *db, const char *name, int64_t keep,
                                        int64_t *remaining)
{
    static const char count_sql[] = "SELECT count(*) FROM secret_versions WHERE secret_name = ?";
    static const char prune_sql[] =
        "DELETE FROM secret_versions WHERE secret_name = ?1 AND version_id IN ("
        "SELECT v.version_id FROM secret_versions v WHERE v.secret_name = ?1 AND NOT EXISTS "
        "(SELECT 1 FROM secret_stages g WHERE g.secret_name = ?1 AND g.version_id = v.version_id) "
        "ORDER BY v.created_at, v.rowid LIMIT ?2)";
    sqlite3_stmt *st = kms_db_stmt(db, count_sql);
    int64_t n = 0;
    kms_err rc;

    if (st != NULL)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = kms_db_count(db, st, &n);
    if (rc != KMS_OK || n <= keep) {
        *remaining = n;
        return rc;
    }
    st = kms_db_stmt(db, prune_sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, n - keep);
    rc = kms_db_exec_stmt(db, st, "secret version prune");
    if (rc != KMS_OK)
        return rc;
    *remaining = n - sqlite3_changes(db->db_handle);
    return KMS_OK;
}

kms_err kms_store_secret_stage_get(struct kms_db *db, const char *name, const char *stage,
                                   char version_id[KMS_SECRET_VERSION_MAX + 1])
{
    static const char sql[] =
        "SELECT version_id FROM secret_stages WHERE secret_name = ? AND stage = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    int rc;

    version_id[0] = '\0';
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, stage, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        kms_db_column_copy(st, 0, version_id, KMS_SECRET_VERSION_MAX + 1);
    else if (rc == SQLITE_DONE)
        err = KMS_E_RESOURCE_NOT_FOUND;
    else
        err = kms_db_err(db, rc, "secret stage get");
    sqlite3_reset(st);
    return err;
}

kms_err kms_store_secret_stage_set(struct kms_db *db, const char *name, const char *stage,
                                   const char *version_id)
{
    static const char sql[] = "INSERT INTO secret_stages (secret_name, stage, version_id) "
                              "VALUES (?,?,?) ON CONFLICT (secret_name, stage) "
                              "DO UPDATE SET version_id = excluded.version_id";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, stage, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, version_id, -1, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, "secret stage set");
}

kms_err kms_store_secret_stage_remove(struct kms_db *db, const char *name, const char *stage)
{
    static const char sql[] = "DELETE FROM secret_stages WHERE secret_name = ? AND stage = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, stage, -1, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, "secret stage remove");
}

kms_err kms_store_secret_stages(struct kms_db *db, const char *name, const char *version_id,
                                char ***stages, size_t *count)
{
    static const char sql[] = "SELECT stage FROM secret_stages WHERE secret_name = ? AND "
                              "version_id = ? ORDER BY stage";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    *stages = NULL;
    *count = 0;
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, version_id, -1, SQLITE_STATIC);
    return kms_db_collect_ids(db, st, stages, count);
}
