/*
 * nonces.c - the durable copy of the replay cache: keyed hashes of (AccessKeyId, nonce) with
 * their expiry, written in batches by the background flush and read back at start.
 */
#include "db_internal.h"

kms_err kms_store_nonces_put(struct kms_db *db, const uint64_t *hashes, const int64_t *expires,
                             size_t count)
{
    static const char sql[] = "INSERT OR IGNORE INTO nonces (hash, expires_at) VALUES (?, ?)";

    for (size_t i = 0; i < count; i++) {
        sqlite3_stmt *st = kms_db_stmt(db, sql);
        kms_err rc;

        if (st == NULL)
            return KMS_E_INTERNAL;
        /* SQLite integers are signed: the hash's bits are stored as they are. */
        sqlite3_bind_int64(st, 1, (sqlite3_int64)hashes[i]);
        sqlite3_bind_int64(st, 2, expires[i]);
        rc = kms_db_exec_stmt(db, st, "nonce put");
        if (rc != KMS_OK)
            return rc;
    }
    return KMS_OK;
}

kms_err kms_store_nonces_load(struct kms_db *db, int64_t now,
                              void (*fn)(uint64_t hash, int64_t expires_at, void *arg), void *arg)
{
    static const char sql[] = "SELECT hash, expires_at FROM nonces WHERE expires_at > ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    int rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int64(st, 1, now);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn((uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), arg);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return kms_db_err(db, rc, "nonce load");
    return KMS_OK;
}

kms_err kms_store_nonces_purge(struct kms_db *db, int64_t now)
{
    static const char sql[] = "DELETE FROM nonces WHERE expires_at <= ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int64(st, 1, now);
    return kms_db_exec_stmt(db, st, "nonce purge");
}
