/*
 * aliases.c - the aliases table: names bound to keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

kms_err kms_store_alias_insert(struct kms_db *db, const char *alias_name, const char *key_id,
                               int64_t now)
{
    static const char sql[] = "INSERT INTO aliases (alias_name, key_id, created_at) VALUES (?,?,?)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, alias_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    rc = kms_db_exec_stmt(db, st, "alias insert");
    return rc == KMS_E_RESOURCE_EXISTS ? KMS_E_ALIAS_EXISTS : rc;
}

kms_err kms_store_alias_get(struct kms_db *db, const char *alias_name, char key_id[KMS_ID_MAX])
{
    static const char sql[] = "SELECT key_id FROM aliases WHERE alias_name = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    int rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, alias_name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        kms_db_column_copy(st, 0, key_id, KMS_ID_MAX);
    else if (rc == SQLITE_DONE)
        err = KMS_E_ALIAS_NOT_FOUND;
    else
        err = kms_db_err(db, rc, "alias get");
    sqlite3_reset(st);
    return err;
}

kms_err kms_store_alias_update(struct kms_db *db, const char *alias_name, const char *key_id)
{
    static const char sql[] = "UPDATE aliases SET key_id = ? WHERE alias_name = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, alias_name, -1, SQLITE_STATIC);
    rc = kms_db_exec_stmt(db, st, "alias update");
    if (rc == KMS_OK && sqlite3_changes(db->db_handle) == 0)
        return KMS_E_ALIAS_NOT_FOUND;
    return rc;
}

kms_err kms_store_alias_delete(struct kms_db *db, const char *alias_name)
{
    static const char sql[] = "DELETE FROM aliases WHERE alias_name = ?";
    kms_err rc = kms_db_exec_text(db, sql, alias_name, "alias delete");
    if (rc == KMS_OK && sqlite3_changes(db->db_handle) == 0)
        return KMS_E_ALIAS_NOT_FOUND;
    return rc;
}

kms_err kms_store_alias_count(struct kms_db *db, int64_t *out)
{
    static const char sql[] = "SELECT count(*) FROM aliases";

    return kms_db_count(db, kms_db_stmt(db, sql), out);
}

/* The aliases of one key (?1) or all (?1 NULL), but not those of keys past their DeleteDate. */
#define KMS_ALIAS_LISTED                                                                           \
    "(?1 IS NULL OR a.key_id = ?1) AND NOT EXISTS (SELECT 1 FROM keys k WHERE "                    \
    "k.key_id = a.key_id AND k.state = ?4 AND k.delete_at <= ?5)"

kms_err kms_store_alias_list(struct kms_db *db, const char *key_id, int64_t now, int64_t offset,
                             int64_t limit, struct kms_alias_record **out, size_t *count,
                             int64_t *total)
{
    static const char list_sql[] = "SELECT a.alias_name, a.key_id FROM aliases a "
                                   "WHERE " KMS_ALIAS_LISTED " "
                                   "ORDER BY a.created_at, a.rowid LIMIT ?2 OFFSET ?3";
    static const char count_sql[] = "SELECT count(*) FROM aliases a WHERE " KMS_ALIAS_LISTED;
    struct kms_alias_record *list = NULL;
    size_t n = 0;
    sqlite3_stmt *st = kms_db_stmt(db, count_sql);
    kms_err err;
    int rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    if (key_id)
        sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, KMS_STATE_PENDING_DELETION);
    sqlite3_bind_int64(st, 5, now);
    err = kms_db_count(db, st, total);
    if (err != KMS_OK)
        return err;
    st = kms_db_stmt(db, list_sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    if (key_id)
        sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
    sqlite3_bind_int(st, 4, KMS_STATE_PENDING_DELETION);
    sqlite3_bind_int64(st, 5, now);
    list = calloc(limit > 0 ? (size_t)limit : 1, sizeof(*list));
    if (list == NULL) {
        sqlite3_reset(st);
        return KMS_E_INTERNAL;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (int64_t)n < limit) {
        kms_db_column_copy(st, 0, list[n].alias_name, sizeof(list[n].alias_name));
        kms_db_column_copy(st, 1, list[n].key_id, sizeof(list[n].key_id));
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        free(list);
        return kms_db_err(db, rc, "alias list");
    }
    *out = list;
    *count = n;
    return KMS_OK;
}
