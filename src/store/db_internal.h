/*
 * db_internal.h - what the store's table files share: the connection type and its cached
 * prepared statements. Not for use outside src/store/.
 */
#ifndef KMS_STORE_DB_INTERNAL_H
#define KMS_STORE_DB_INTERNAL_H

#include <sqlite3.h>

#include "kms/store.h"

struct kms_db {
    sqlite3 *db_handle;
    /* Statements are cached by the address of their (static) SQL text. */
    const char **db_stmt_sql;
    sqlite3_stmt **db_stmts;
    int db_stmt_count;
    int db_stmt_cap;
    int db_in_tx;
};

/* The cached, reset statement for sql (a string literal), or NULL (logged). */
sqlite3_stmt *kms_db_stmt(struct kms_db *db, const char *sql);
/* Maps an SQLite result code to a kms_err (constraint -> KMS_E_RESOURCE_EXISTS). */
kms_err kms_db_err(struct kms_db *db, int rc, const char *what);
/* Runs a statement expected to complete (no rows); resets it. */
kms_err kms_db_exec_stmt(struct kms_db *db, sqlite3_stmt *st, const char *what);
/* Copies column col as an owned NUL-terminated string ("" for NULL); NULL only on OOM. */
char *kms_db_column_strdup(sqlite3_stmt *st, int col);
/* Copies column col into buf (size bytes, truncated, NUL-terminated). */
void kms_db_column_copy(sqlite3_stmt *st, int col, char *buf, size_t size);
/* Runs sql (a string literal) with one text parameter, ?1 = text, expecting no rows. */
kms_err kms_db_exec_text(struct kms_db *db, const char *sql, const char *text, const char *what);
/* Runs a count(*) statement into *out. */
kms_err kms_db_count(struct kms_db *db, sqlite3_stmt *st, int64_t *out);
/* Collects column 0 text of every row into an owned string array. */
kms_err kms_db_collect_ids(struct kms_db *db, sqlite3_stmt *st, char ***ids, size_t *count);

#endif
