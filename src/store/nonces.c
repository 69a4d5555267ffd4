/*
 * nonces.c - the durable copy of the replay cache: keyed hashes of (AccessKeyId, nonce) with
 * their expiry, written by the background flush and read back at start.
 *
 * One row per flush (nonce_batches): the batch's entries packed into one blob, indexed by the
 * latest expiry among them. The hashes are random, so a row per nonce keyed by its hash put
 * every nonce on a random B-tree page (a page read, a WAL frame and a checkpoint write each once
 * the table outgrew the cache); a batch is one sequential append, and the purge deletes whole
 * batches once their last entry has expired. An entry is 16 bytes: the hash and the expiry,
 * each a little-endian 64-bit integer.
 *
 * Rows carried over from the older one-row-per-nonce table (schema migration 5) hold their hash
 * as an INTEGER in entries, with its expiry in expires_max; the load reads both forms.
 */
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "kms/log.h"

#define KMS_NONCE_ENTRY_BYTES 16

static void kms_nonce_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t kms_nonce_get_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

kms_err kms_store_nonces_put(struct kms_db *db, const uint64_t *hashes, const int64_t *expires,
                             size_t count)
{
    static const char sql[] = "INSERT INTO nonce_batches (expires_max, entries) VALUES (?, ?)";
    sqlite3_stmt *st;
    int64_t expires_max;
    uint8_t *blob;
    kms_err rc;

    if (count == 0)
        return KMS_OK;
    if (count > (size_t)INT32_MAX / KMS_NONCE_ENTRY_BYTES)
        return KMS_E_INTERNAL;
    blob = malloc(count * KMS_NONCE_ENTRY_BYTES);
    if (blob == NULL)
        return KMS_E_INTERNAL;
    expires_max = expires[0];
    for (size_t i = 0; i < count; i++) {
        kms_nonce_put_le64(blob + i * KMS_NONCE_ENTRY_BYTES, hashes[i]);
        kms_nonce_put_le64(blob + i * KMS_NONCE_ENTRY_BYTES + 8, (uint64_t)expires[i]);
        if (expires[i] > expires_max)
            expires_max = expires[i];
    }
    st = kms_db_stmt(db, sql);
    if (st == NULL) {
        free(blob);
        return KMS_E_INTERNAL;
    }
    sqlite3_bind_int64(st, 1, expires_max);
    sqlite3_bind_blob(st, 2, blob, (int)(count * KMS_NONCE_ENTRY_BYTES), SQLITE_STATIC);
    rc = kms_db_exec_stmt(db, st, "nonce put");
    /* Unbound before the blob goes, so the cached statement holds no dangling pointer. */
    sqlite3_clear_bindings(st);
    free(blob);
    return rc;
}

kms_err kms_store_nonces_load(struct kms_db *db, int64_t now,
                              void (*fn)(uint64_t hash, int64_t expires_at, void *arg), void *arg)
{
    static const char sql[] =
        "SELECT expires_max, entries FROM nonce_batches WHERE expires_max > ? ORDER BY id";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err result = KMS_OK;
    int rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int64(st, 1, now);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t expires_max = sqlite3_column_int64(st, 0);

        if (sqlite3_column_type(st, 1) == SQLITE_INTEGER) {
            /* A row from the one-row-per-nonce table (see the file comment). */
            fn((uint64_t)sqlite3_column_int64(st, 1), expires_max, arg);
        } else {
            const uint8_t *p = sqlite3_column_blob(st, 1);
            size_t len = (size_t)sqlite3_column_bytes(st, 1);

            /* A batch that is not whole entries was not written by kmsd: refuse to guess. */
            if (sqlite3_column_type(st, 1) != SQLITE_BLOB || len % KMS_NONCE_ENTRY_BYTES != 0 ||
                (len > 0 && p == NULL)) {
                kms_log_error("store: malformed replay-cache batch");
                result = KMS_E_INTERNAL;
                break;
            }
            for (size_t off = 0; off < len; off += KMS_NONCE_ENTRY_BYTES) {
                int64_t expires_at = (int64_t)kms_nonce_get_le64(p + off + 8);

                if (expires_at > now)
                    fn(kms_nonce_get_le64(p + off), expires_at, arg);
            }
        }
    }
    sqlite3_reset(st);
    if (result != KMS_OK)
        return result;
    if (rc != SQLITE_DONE)
        return kms_db_err(db, rc, "nonce load");
    return KMS_OK;
}

kms_err kms_store_nonces_purge(struct kms_db *db, int64_t now)
{
    static const char sql[] = "DELETE FROM nonce_batches WHERE expires_max <= ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int64(st, 1, now);
    return kms_db_exec_stmt(db, st, "nonce purge");
}
