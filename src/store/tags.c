/*
 * tags.c - the tags table, shared by keys and secrets (resource_type "key" / "secret"), and the
 * listing of every tag of one resource type that ListTagResources pages through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

void kms_tags_free(struct kms_tag *tags, size_t count)
{
    if (tags == NULL)
        return;
    for (size_t i = 0; i < count; i++) {
        free(tags[i].key);
        free(tags[i].value);
    }
    free(tags);
}

kms_err kms_store_tags_put(struct kms_db *db, const char *type, const char *id,
                           const struct kms_tag *tags, size_t count)
{
    static const char sql[] = "INSERT INTO tags (resource_type, resource_id, tag_key, tag_value) "
                              "VALUES (?,?,?,?) ON CONFLICT (resource_type, resource_id, tag_key) "
                              "DO UPDATE SET tag_value = excluded.tag_value";

    for (size_t i = 0; i < count; i++) {
        sqlite3_stmt *st = kms_db_stmt(db, sql);
        kms_err rc;

        if (st == NULL)
            return KMS_E_INTERNAL;
        sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, tags[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, tags[i].value, -1, SQLITE_STATIC);
        rc = kms_db_exec_stmt(db, st, "tag put");
        if (rc != KMS_OK)
            return rc;
    }
    return KMS_OK;
}

kms_err kms_store_tags_remove(struct kms_db *db, const char *type, const char *id,
                              const char *const *keys, size_t count)
{
    static const char sql[] =
        "DELETE FROM tags WHERE resource_type = ? AND resource_id = ? AND tag_key = ?";

    for (size_t i = 0; i < count; i++) {
        sqlite3_stmt *st = kms_db_stmt(db, sql);
        kms_err rc;

        if (st == NULL)
            return KMS_E_INTERNAL;
        sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, keys[i], -1, SQLITE_STATIC);
        rc = kms_db_exec_stmt(db, st, "tag remove");
        if (rc != KMS_OK)
            return rc;
    }
    return KMS_OK;
}

kms_err kms_store_tags_remove_all(struct kms_db *db, const char *type, const char *id)
{
    static const char sql[] = "DELETE FROM tags WHERE resource_type = ? AND resource_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, "tags remove all");
}

kms_err kms_store_tags_get(struct kms_db *db, const char *type, const char *id,
                           struct kms_tag **out, size_t *count)
{
    static const char sql[] = "SELECT tag_key, tag_value FROM tags "
                              "WHERE resource_type = ? AND resource_id = ? ORDER BY tag_key";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    struct kms_tag *tags = NULL;
    size_t n = 0, cap = 0;
    int rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            struct kms_tag *grown;
            cap = cap ? cap * 2 : 8;
            grown = realloc(tags, cap * sizeof(*tags));
            if (grown == NULL)
                goto oom;
            tags = grown;
        }
        tags[n].key = kms_db_column_strdup(st, 0);
        tags[n].value = kms_db_column_strdup(st, 1);
        n++;
        if (tags[n - 1].key == NULL || tags[n - 1].value == NULL)
            goto oom;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        kms_tags_free(tags, n);
        return kms_db_err(db, rc, "tags get");
    }
    *out = tags;
    *count = n;
    return KMS_OK;
oom:
    sqlite3_reset(st);
    kms_tags_free(tags, n);
    return KMS_E_INTERNAL;
}

kms_err kms_store_tags_count(struct kms_db *db, const char *type, const char *id, int64_t *out)
{
    static const char sql[] =
        "SELECT count(*) FROM tags WHERE resource_type = ? AND resource_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st != NULL) {
        sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    }
    return kms_db_count(db, st, out);
}

void kms_tag_rows_free(struct kms_tag_row *rows, size_t count)
{
    if (rows == NULL)
        return;
    for (size_t i = 0; i < count; i++) {
        free(rows[i].resource_id);
        free(rows[i].key);
        free(rows[i].value);
    }
    free(rows);
}

kms_err kms_store_tag_rows(struct kms_db *db, const char *type, int64_t now,
                           struct kms_tag_row **out, size_t *count)
{
    /* Only live resources: a key or secret past its deletion time is gone even before the
     * maintenance pass removes its rows (and its tags with them). */
    static const char key_sql[] = "SELECT t.resource_id, t.tag_key, t.tag_value FROM tags t "
                                  "JOIN keys k ON k.key_id = t.resource_id "
                                  "WHERE t.resource_type = 'key' AND k.internal = 0 AND NOT "
                                  "(k.state = 2 AND k.delete_at <= ?) "
                                  "ORDER BY t.resource_id, t.tag_key";
    static const char secret_sql[] =
        "SELECT t.resource_id, t.tag_key, t.tag_value FROM tags t "
        "JOIN secrets s ON s.secret_name = t.resource_id "
        "WHERE t.resource_type = 'secret' AND (s.delete_at = 0 OR s.delete_at > ?) "
        "ORDER BY t.resource_id, t.tag_key";
    sqlite3_stmt *st = kms_db_stmt(db, strcmp(type, "key") == 0 ? key_sql : secret_sql);
    struct kms_tag_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;

    *out = NULL;
    *count = 0;
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int64(st, 1, now);
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (n == cap) {
            struct kms_tag_row *grown;
            cap = cap ? cap * 2 : 32;
            grown = realloc(rows, cap * sizeof(*rows));
            if (grown == NULL)
                goto oom;
            rows = grown;
        }
        rows[n].resource_id = kms_db_column_strdup(st, 0);
        rows[n].key = kms_db_column_strdup(st, 1);
        rows[n].value = kms_db_column_strdup(st, 2);
        n++;
        if (rows[n - 1].resource_id == NULL || rows[n - 1].key == NULL || rows[n - 1].value == NULL)
            goto oom;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        kms_tag_rows_free(rows, n);
        return kms_db_err(db, rc, "tag rows");
    }
    *out = rows;
    *count = n;
    return KMS_OK;
oom:
    sqlite3_reset(st);
    kms_tag_rows_free(rows, n);
    return KMS_E_INTERNAL;
}
