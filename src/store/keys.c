/*
 * keys.c - the keys and key_versions tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db_internal.h"

#define KMS_KEY_COLUMNS                                                                            \
    "key_id, description, key_spec, key_usage, origin, protection, state, created_at, "            \
    "delete_at, material_expire_at, primary_version, rotation_interval, last_rotation_at, "        \
    "next_rotation_at, deletion_protection, deletion_protection_desc, internal, "                  \
    "material_fingerprint"

void kms_key_record_free(struct kms_key_record *k)
{
    free(k->description);
    free(k->deletion_protection_desc);
    k->description = NULL;
    k->deletion_protection_desc = NULL;
}

void kms_version_record_free(struct kms_version_record *v)
{
    if (v->material)
        OPENSSL_cleanse(v->material, v->material_len);
    free(v->material);
    free(v->public_der);
    v->material = NULL;
    v->public_der = NULL;
    v->material_len = v->public_der_len = 0;
}

/* Binds the mutable columns shared by insert and update, starting at parameter first. */
static void kms_key_bind_mutable(sqlite3_stmt *st, int first, const struct kms_key_record *k)
{
    sqlite3_bind_text(st, first, k->description ? k->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, first + 1, (int)k->state);
    sqlite3_bind_int64(st, first + 2, k->delete_at);
    sqlite3_bind_int64(st, first + 3, k->material_expire_at);
    sqlite3_bind_text(st, first + 4, k->primary_version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, first + 5, k->rotation_interval);
    sqlite3_bind_int64(st, first + 6, k->last_rotation_at);
    sqlite3_bind_int64(st, first + 7, k->next_rotation_at);
    sqlite3_bind_int(st, first + 8, k->deletion_protection);
    sqlite3_bind_text(st, first + 9, k->deletion_protection_desc ? k->deletion_protection_desc : "",
                      -1, SQLITE_STATIC);
    if (k->has_fingerprint)
        sqlite3_bind_blob(st, first + 10, k->material_fingerprint,
                          (int)sizeof(k->material_fingerprint), SQLITE_STATIC);
    else
        sqlite3_bind_null(st, first + 10);
}

kms_err kms_store_key_insert(struct kms_db *db, const struct kms_key_record *k)
{
    static const char sql[] =
        "INSERT INTO keys (description, state, delete_at, material_expire_at, primary_version, "
        "rotation_interval, last_rotation_at, next_rotation_at, deletion_protection, "
        "deletion_protection_desc, material_fingerprint, key_id, key_spec, key_usage, origin, "
        "protection, created_at, internal) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    kms_key_bind_mutable(st, 1, k);
    sqlite3_bind_text(st, 12, k->key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 13, (int)k->spec);
    sqlite3_bind_int(st, 14, (int)k->usage);
    sqlite3_bind_int(st, 15, (int)k->origin);
    sqlite3_bind_int(st, 16, (int)k->protection);
    sqlite3_bind_int64(st, 17, k->created_at);
    sqlite3_bind_int(st, 18, k->internal);
    return kms_db_exec_stmt(db, st, "key insert");
}

kms_err kms_store_key_update(struct kms_db *db, const struct kms_key_record *k)
{
    static const char sql[] =
        "UPDATE keys SET description = ?, state = ?, delete_at = ?, material_expire_at = ?, "
        "primary_version = ?, rotation_interval = ?, last_rotation_at = ?, next_rotation_at = ?, "
        "deletion_protection = ?, deletion_protection_desc = ?, material_fingerprint = ? "
        "WHERE key_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    kms_key_bind_mutable(st, 1, k);
    sqlite3_bind_text(st, 12, k->key_id, -1, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, "key update");
}

kms_err kms_store_key_get(struct kms_db *db, const char *key_id, struct kms_key_record *out)
{
    static const char sql[] = "SELECT " KMS_KEY_COLUMNS " FROM keys WHERE key_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err = KMS_E_KEY_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        err = kms_db_err(db, rc, "key get");
    } else {
        kms_db_column_copy(st, 0, out->key_id, sizeof(out->key_id));
        out->description = kms_db_column_strdup(st, 1);
        out->spec = (enum kms_key_spec)sqlite3_column_int(st, 2);
        out->usage = (enum kms_key_usage)sqlite3_column_int(st, 3);
        out->origin = (enum kms_origin)sqlite3_column_int(st, 4);
        out->protection = (enum kms_protection)sqlite3_column_int(st, 5);
        out->state = (enum kms_key_state)sqlite3_column_int(st, 6);
        out->created_at = sqlite3_column_int64(st, 7);
        out->delete_at = sqlite3_column_int64(st, 8);
        out->material_expire_at = sqlite3_column_int64(st, 9);
        kms_db_column_copy(st, 10, out->primary_version, sizeof(out->primary_version));
        out->rotation_interval = sqlite3_column_int64(st, 11);
        out->last_rotation_at = sqlite3_column_int64(st, 12);
        out->next_rotation_at = sqlite3_column_int64(st, 13);
        out->deletion_protection = sqlite3_column_int(st, 14) != 0;
        out->deletion_protection_desc = kms_db_column_strdup(st, 15);
        out->internal = sqlite3_column_int(st, 16) != 0;
        if (sqlite3_column_bytes(st, 17) == (int)sizeof(out->material_fingerprint)) {
            memcpy(out->material_fingerprint, sqlite3_column_blob(st, 17),
                   sizeof(out->material_fingerprint));
            out->has_fingerprint = true;
        }
        if (out->description == NULL || out->deletion_protection_desc == NULL) {
            kms_key_record_free(out);
            err = KMS_E_INTERNAL;
        }
    }
    sqlite3_reset(st);
    return err;
}

kms_err kms_store_key_delete(struct kms_db *db, const char *key_id)
{
    static const char del_key[] = "DELETE FROM keys WHERE key_id = ?";
    kms_err rc = kms_store_tags_remove_all(db, "key", key_id);

    /* Versions and aliases go with the key (ON DELETE CASCADE). */
    return rc == KMS_OK ? kms_db_exec_text(db, del_key, key_id, "key delete") : rc;
}

kms_err kms_store_key_count(struct kms_db *db, bool with_internal, int64_t *out)
{
    static const char sql[] = "SELECT count(*) FROM keys WHERE internal = 0 OR ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st != NULL)
        sqlite3_bind_int(st, 1, with_internal);
    return kms_db_count(db, st, out);
}

kms_err kms_store_keys_due(struct kms_db *db, int64_t now, char ***ids, size_t *count)
{
    static const char sql[] = "SELECT key_id FROM keys WHERE "
                              "(state = 2 AND delete_at <= ?1) "
                              "OR (material_expire_at > 0 AND material_expire_at <= ?1) "
                              "OR (state = 0 AND next_rotation_at > 0 AND next_rotation_at <= ?1)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int64(st, 1, now);
    return kms_db_collect_ids(db, st, ids, count);
}

kms_err kms_store_version_insert(struct kms_db *db, const struct kms_version_record *v)
{
    static const char sql[] = "INSERT INTO key_versions (version_id, key_id, created_at, "
                              "material, public_der) VALUES (?,?,?,?,?)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, v->version_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v->key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, v->created_at);
    if (v->material)
        sqlite3_bind_blob(st, 4, v->material, (int)v->material_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    if (v->public_der)
        sqlite3_bind_blob(st, 5, v->public_der, (int)v->public_der_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    return kms_db_exec_stmt(db, st, "version insert");
}

static uint8_t *kms_db_column_blobdup(sqlite3_stmt *st, int col, size_t *len, bool *oom)
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

kms_err kms_store_version_get(struct kms_db *db, const char *version_id,
                              struct kms_version_record *out)
{
    static const char sql[] = "SELECT version_id, key_id, created_at, material, public_der "
                              "FROM key_versions WHERE version_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    bool oom = false;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, version_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err = KMS_E_KEY_VERSION_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        err = kms_db_err(db, rc, "version get");
    } else {
        kms_db_column_copy(st, 0, out->version_id, sizeof(out->version_id));
        kms_db_column_copy(st, 1, out->key_id, sizeof(out->key_id));
        out->created_at = sqlite3_column_int64(st, 2);
        out->material = kms_db_column_blobdup(st, 3, &out->material_len, &oom);
        out->public_der = kms_db_column_blobdup(st, 4, &out->public_der_len, &oom);
        if (oom) {
            kms_version_record_free(out);
            err = KMS_E_INTERNAL;
        }
    }
    sqlite3_reset(st);
    return err;
}

kms_err kms_store_version_set_material(struct kms_db *db, const char *version_id,
                                       const uint8_t *material, size_t len)
{
    static const char sql[] = "UPDATE key_versions SET material = ? WHERE version_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    if (material)
        sqlite3_bind_blob(st, 1, material, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 1);
    sqlite3_bind_text(st, 2, version_id, -1, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, "version material");
}

kms_err kms_store_version_list(struct kms_db *db, const char *key_id, int64_t offset, int64_t limit,
                               char ***ids, size_t *count)
{
    static const char sql[] = "SELECT version_id FROM key_versions WHERE key_id = ? "
                              "ORDER BY created_at, rowid LIMIT ? OFFSET ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
    return kms_db_collect_ids(db, st, ids, count);
}

kms_err kms_store_version_list_records(struct kms_db *db, const char *key_id, int64_t offset,
                                       int64_t limit, struct kms_version_record **out,
                                       size_t *count)
{
    static const char sql[] = "SELECT version_id, key_id, created_at FROM key_versions "
                              "WHERE key_id = ? ORDER BY created_at, rowid LIMIT ? OFFSET ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    struct kms_version_record *list = NULL;
    size_t n = 0, cap = 0;
    int rc;

    *out = NULL;
    *count = 0;
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            struct kms_version_record *grown;

            cap = cap ? cap * 2 : 16;
            grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL) {
                sqlite3_reset(st);
                free(list);
                return KMS_E_INTERNAL;
            }
            list = grown;
        }
        memset(&list[n], 0, sizeof(list[n]));
        kms_db_column_copy(st, 0, list[n].version_id, sizeof(list[n].version_id));
        kms_db_column_copy(st, 1, list[n].key_id, sizeof(list[n].key_id));
        list[n].created_at = sqlite3_column_int64(st, 2);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(list);
        return kms_db_err(db, rc, "version list");
    }
    *out = list;
    *count = n;
    return KMS_OK;
}

void kms_store_free_versions(struct kms_version_record *v, size_t count)
{
    for (size_t i = 0; v != NULL && i < count; i++)
        kms_version_record_free(&v[i]);
    free(v);
}

kms_err kms_store_version_count(struct kms_db *db, const char *key_id, int64_t *out)
{
    static const char sql[] = "SELECT count(*) FROM key_versions WHERE key_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st != NULL)
        sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    return kms_db_count(db, st, out);
}

kms_err kms_store_version_count_all(struct kms_db *db, int64_t *out)
{
    static const char sql[] = "SELECT count(*) FROM key_versions";

    return kms_db_count(db, kms_db_stmt(db, sql), out);
}

kms_err kms_store_versions_mark_destroyed(struct kms_db *db, const char *key_id, int64_t now)
{
    static const char sql[] = "INSERT OR IGNORE INTO destroyed_versions (version_id, destroyed_at) "
                              "SELECT version_id, ? FROM key_versions WHERE key_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, key_id, -1, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, "versions mark destroyed");
}

kms_err kms_store_version_destroyed(struct kms_db *db, const char *version_id, bool *destroyed)
{
    static const char sql[] = "SELECT 1 FROM destroyed_versions WHERE version_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    int rc;

    *destroyed = false;
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, version_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *destroyed = true;
    else if (rc != SQLITE_DONE)
        err = kms_db_err(db, rc, "version destroyed");
    sqlite3_reset(st);
    return err;
}

/*
 * The WHERE clause of a key listing: the keys that exist for the API (not internal, not past
 * their DeleteDate), then one AND term per filter, one OR term per value. Every value is a bound
 * parameter; the clause's shape depends only on the filters' kinds and value counts.
 */
static kms_err kms_key_filter_sql(const struct kms_key_filter *filters, size_t filter_count,
                                  struct kms_buf *sql)
{
    static const char *const term[] = {
        /* Imported material past its expiry reads as PendingImport (kms_key_effective_state). */
        [KMS_KEY_FILTER_STATE] = "(CASE WHEN k.origin = ? AND k.material_expire_at != 0 AND "
                                 "k.material_expire_at <= ? AND k.state IN (?, ?) THEN ? "
                                 "ELSE k.state END) = ?",
        [KMS_KEY_FILTER_SPEC] = "k.key_spec = ?",
        [KMS_KEY_FILTER_USAGE] = "k.key_usage = ?",
        [KMS_KEY_FILTER_PROTECTION] = "k.protection = ?",
        [KMS_KEY_FILTER_ALIAS] = "EXISTS (SELECT 1 FROM aliases a WHERE a.key_id = k.key_id AND "
                                 "(a.alias_name = ? OR a.alias_name = 'alias/' || ?))",
        [KMS_KEY_FILTER_TAG_KEY] = "EXISTS (SELECT 1 FROM tags t WHERE t.resource_type = 'key' "
                                   "AND t.resource_id = k.key_id AND t.tag_key = ?)",
        [KMS_KEY_FILTER_TAG_VALUE] = "EXISTS (SELECT 1 FROM tags t WHERE t.resource_type = 'key' "
                                     "AND t.resource_id = k.key_id AND t.tag_value = ?)",
        [KMS_KEY_FILTER_ID] = "k.key_id = ?",
    };
    kms_err rc =
        kms_buf_append_str(sql, " WHERE k.internal = 0 AND NOT (k.state = ? AND k.delete_at <= ?)");

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

/* Binds every filter value in the order kms_key_filter_sql wrote them; the next index. */
static int kms_key_filter_bind(sqlite3_stmt *st, int64_t now, const struct kms_key_filter *filters,
                               size_t filter_count)
{
    int n = 1;

    sqlite3_bind_int(st, n++, KMS_STATE_PENDING_DELETION);
    sqlite3_bind_int64(st, n++, now);
    for (size_t i = 0; i < filter_count; i++) {
        for (size_t j = 0; j < filters[i].count; j++) {
            switch (filters[i].kind) {
            case KMS_KEY_FILTER_STATE:
                sqlite3_bind_int(st, n++, KMS_ORIGIN_EXTERNAL);
                sqlite3_bind_int64(st, n++, now);
                sqlite3_bind_int(st, n++, KMS_STATE_ENABLED);
                sqlite3_bind_int(st, n++, KMS_STATE_DISABLED);
                sqlite3_bind_int(st, n++, KMS_STATE_PENDING_IMPORT);
                sqlite3_bind_int64(st, n++, filters[i].numbers[j]);
                break;
            case KMS_KEY_FILTER_SPEC:
            case KMS_KEY_FILTER_USAGE:
            case KMS_KEY_FILTER_PROTECTION:
                sqlite3_bind_int64(st, n++, filters[i].numbers[j]);
                break;
            case KMS_KEY_FILTER_ALIAS:
                sqlite3_bind_text(st, n++, filters[i].texts[j], -1, SQLITE_STATIC);
                sqlite3_bind_text(st, n++, filters[i].texts[j], -1, SQLITE_STATIC);
                break;
            case KMS_KEY_FILTER_TAG_KEY:
            case KMS_KEY_FILTER_TAG_VALUE:
            case KMS_KEY_FILTER_ID:
                sqlite3_bind_text(st, n++, filters[i].texts[j], -1, SQLITE_STATIC);
                break;
            }
        }
    }
    return n;
}

kms_err kms_store_key_list_filtered(struct kms_db *db, int64_t now,
                                    const struct kms_key_filter *filters, size_t filter_count,
                                    int64_t offset, int64_t limit, char ***ids, size_t *count,
                                    int64_t *total)
{
    struct kms_buf where = {0}, sql = {0};
    sqlite3_stmt *st = NULL;
    int rc, next;
    kms_err err;

    *ids = NULL;
    *count = 0;
    *total = 0;
    /* Filters vary per request, so these statements are prepared each time, not cached. */
    err = kms_key_filter_sql(filters, filter_count, &where);
    if (err == KMS_OK)
        err = kms_buf_printf(&sql, "SELECT count(*) FROM keys k%s", where.data);
    if (err != KMS_OK)
        goto out;
    if (sqlite3_prepare_v2(db->db_handle, sql.data, -1, &st, NULL) != SQLITE_OK) {
        err = kms_db_err(db, SQLITE_ERROR, "key count (filtered)");
        goto out;
    }
    kms_key_filter_bind(st, now, filters, filter_count);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        err = kms_db_err(db, rc, "key count (filtered)");
        goto out;
    }
    *total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    kms_buf_reset(&sql);
    err = kms_buf_printf(&sql,
                         "SELECT k.key_id FROM keys k%s ORDER BY k.created_at, k.rowid "
                         "LIMIT ? OFFSET ?",
                         where.data);
    if (err != KMS_OK)
        goto out;
    if (sqlite3_prepare_v2(db->db_handle, sql.data, -1, &st, NULL) != SQLITE_OK) {
        err = kms_db_err(db, SQLITE_ERROR, "key list (filtered)");
        goto out;
    }
    next = kms_key_filter_bind(st, now, filters, filter_count);
    sqlite3_bind_int64(st, next, limit);
    sqlite3_bind_int64(st, next + 1, offset);
    err = kms_db_collect_ids(db, st, ids, count);
out:
    sqlite3_finalize(st);
    kms_buf_free(&where);
    kms_buf_free(&sql);
    return err;
}

kms_err kms_store_key_count_by_state(struct kms_db *db, int64_t counts[KMS_KEY_STATE_COUNT])
{
    static const char sql[] = "SELECT state, count(*) FROM keys WHERE internal = 0 GROUP BY state";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    int rc;

    for (int i = 0; i < KMS_KEY_STATE_COUNT; i++)
        counts[i] = 0;
    if (st == NULL)
        return KMS_E_INTERNAL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 0);

        if (state >= 0 && state < KMS_KEY_STATE_COUNT)
            counts[state] = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KMS_OK : kms_db_err(db, rc, "keys by state");
}

kms_err kms_store_version_ids_all(struct kms_db *db, char ***ids, size_t *count)
{
    static const char sql[] = "SELECT version_id FROM key_versions ORDER BY key_id, created_at, "
                              "rowid";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    return kms_db_collect_ids(db, st, ids, count);
}
