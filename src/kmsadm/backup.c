/*
 * backup.c - kmsadm backup FILE and kmsadm restore FILE, both through SQLite's online backup
 * API.
 *
 * backup reads the database in one read transaction, so the copy is consistent even while kmsd
 * writes (WAL readers never block the writer); it is written to FILE.tmp, synced, and renamed
 * into place, so FILE is either the whole backup or absent. The master key is not in it.
 *
 * restore copies the backup INTO the live database file with the same API: SQLite writes the
 * destination in one transaction through its write-ahead log, so a crash leaves the old database
 * or the new one, never a mixture. Before that it checks the backup (integrity, a schema this
 * kmsd knows, and that the current master key opens it) and keeps the database it replaces as
 * kmsd.db.before-restore. kmsd must be stopped (the lock): it would serve from stale caches.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "keystore/keystore.h"
#include "kms/daemon.h"
#include "kms/store.h"
#include "kmsadm.h"

/* Copies the main database of src into dest (a path); *pages gets the page count. */
static int kmsadm_copy_db(sqlite3 *src, const char *dest_path, bool wal, int *pages)
{
    sqlite3 *dest = NULL;
    sqlite3_backup *b;
    int rc = sqlite3_open_v2(dest_path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(dest, 10000);
        if (wal)
            sqlite3_exec(dest, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", NULL, NULL,
                         NULL);
        else
            sqlite3_exec(dest, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
        b = sqlite3_backup_init(dest, "main", src, "main");
        if (b == NULL) {
            rc = sqlite3_errcode(dest);
        } else {
            /* All pages in one step: one read transaction on src, one write on dest. */
            rc = sqlite3_backup_step(b, -1);
            *pages = sqlite3_backup_pagecount(b);
            sqlite3_backup_finish(b);
            rc = rc == SQLITE_DONE ? sqlite3_errcode(dest) : rc;
        }
    }
    if (rc == SQLITE_OK && !wal)
        rc = sqlite3_exec(dest, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    if (rc == SQLITE_OK && wal)
        rc = sqlite3_exec(dest, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        kmsadm_fail("cannot write %s: %s", dest_path,
                    dest ? sqlite3_errmsg(dest) : sqlite3_errstr(rc));
    sqlite3_close(dest);
    return rc == SQLITE_OK ? KMSADM_OK : KMSADM_FAIL;
}

/*
 * Opens a database to read from. The live one opens read-write (nothing is written through it):
 * a read-only connection cannot set up a WAL database's shared memory when no kmsd is running.
 */
static int kmsadm_open_source(const char *path, bool live, sqlite3 **out)
{
    int rc = sqlite3_open_v2(path, out, live ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY, NULL);

    if (rc != SQLITE_OK) {
        kmsadm_fail("cannot open %s: %s", path, sqlite3_errstr(rc));
        sqlite3_close(*out);
        *out = NULL;
        return KMSADM_FAIL;
    }
    sqlite3_busy_timeout(*out, 10000);
    return KMSADM_OK;
}

/* One integer from a one-row query (e.g. a PRAGMA); -1 when it fails. */
static long long kmsadm_query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int kmsadm_cmd_backup(struct kmsadm *a, int argc, char **argv)
{
    static const struct option longopts[] = {{"force", no_argument, NULL, 'f'}, {NULL, 0, NULL, 0}};
    char tmp[PATH_MAX + 8];
    bool force = false;
    sqlite3 *src = NULL;
    int opt, pages = 0, rc;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt != 'f')
            return KMSADM_USAGE;
        force = true;
    }
    if (optind != argc - 1)
        return kmsadm_fail("usage: kmsadm backup FILE [--force]");
    if (!kmsadm_exists(a->db_path))
        return kmsadm_fail("backup: there is no database %s", a->db_path);
    if (kmsadm_exists(argv[optind]) && !force)
        return kmsadm_fail("backup: %s exists (--force replaces it)", argv[optind]);
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", argv[optind]) >= (int)sizeof(tmp))
        return kmsadm_fail("backup: the path is too long");
    unlink(tmp);
    rc = kmsadm_open_source(a->db_path, true, &src);
    if (rc == KMSADM_OK)
        rc = kmsadm_copy_db(src, tmp, false, &pages);
    sqlite3_close(src);
    if (rc == KMSADM_OK && rename(tmp, argv[optind]) != 0)
        rc = kmsadm_fail("backup: cannot rename %s to %s", tmp, argv[optind]);
    if (rc != KMSADM_OK) {
        unlink(tmp);
        return rc;
    }
    kmsadm_sync_dir_of(argv[optind]);
    printf("backup: %s (%d pages). The master key is not in it: keep %s with it (apart), or "
           "nothing in the backup can be opened.\n",
           argv[optind], pages,
           a->cfg.pkcs11_seal_master_key ? "the PKCS#11 token's master key"
                                         : a->cfg.master_key_file);
    return KMSADM_OK;
}

/* The backup's checks: integrity, schema, and that the current master key opens it. */
static int kmsadm_check_backup(struct kmsadm *a, sqlite3 *b, const char *path, bool force)
{
    long long version = kmsadm_query_int(b, "PRAGMA user_version");
    sqlite3_stmt *st = NULL;
    const char *ok = NULL;
    size_t aad_len;
    const char *aad = kms_master_check_aad(&aad_len);
    int rc = KMSADM_OK;

    if (sqlite3_prepare_v2(b, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        ok = (const char *)sqlite3_column_text(st, 0);
    if (ok == NULL || strcmp(ok, "ok") != 0)
        rc = kmsadm_fail("restore: %s is not an intact SQLite database (%s)", path,
                         ok ? ok : sqlite3_errmsg(b));
    sqlite3_finalize(st);
    if (rc != KMSADM_OK)
        return rc;
    if (version < 1 || version > kms_store_schema_latest())
        return kmsadm_fail("restore: %s has schema version %lld; this kmsadm knows 1 to %d", path,
                           version, kms_store_schema_latest());
    st = NULL;
    if (sqlite3_prepare_v2(b, "SELECT value FROM meta WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        sqlite3_finalize(st);
        return kmsadm_fail("restore: %s is not a kmsd database", path);
    }
    sqlite3_bind_text(st, 1, KMS_MASTER_CHECK_META, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        struct kms_buf opened = {0};
        kms_err err = kms_keystore_open_secret(aad, aad_len, sqlite3_column_blob(st, 0),
                                               (size_t)sqlite3_column_bytes(st, 0), &opened);

        kms_buf_free_secret(&opened);
        if (err != KMS_OK && !force)
            rc = kmsadm_fail("restore: %s was made under another master key than %s (before a "
                             "master-key rotation? then restore it with that key: "
                             "master.key.old); --force restores it anyway",
                             path, a->cfg.master_key_file);
    } else {
        fprintf(stderr,
                "kmsadm: restore: %s has no master-key check value (an older kmsd "
                "made it): kmsadm verify after the restore tells whether it opens\n",
                path);
    }
    sqlite3_finalize(st);
    return rc;
}

int kmsadm_cmd_restore(struct kmsadm *a, int argc, char **argv)
{
    static const struct option longopts[] = {{"force", no_argument, NULL, 'f'}, {NULL, 0, NULL, 0}};
    char keep[PATH_MAX + 32];
    sqlite3 *b = NULL, *live = NULL;
    bool force = false;
    int opt, pages = 0, rc;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt != 'f')
            return KMSADM_USAGE;
        force = true;
    }
    if (optind != argc - 1)
        return kmsadm_fail("usage: kmsadm restore FILE [--force]");
    rc = kmsadm_lock(a, "restore");
    if (rc == KMSADM_OK)
        rc = kmsadm_open_keystores(a, false);
    if (rc == KMSADM_OK)
        rc = kmsadm_open_source(argv[optind], false, &b);
    if (rc == KMSADM_OK)
        rc = kmsadm_check_backup(a, b, argv[optind], force);
    /* What is replaced stays at hand, in case the wrong backup was picked. */
    if (rc == KMSADM_OK && kmsadm_exists(a->db_path)) {
        snprintf(keep, sizeof(keep), "%s.before-restore", a->db_path);
        unlink(keep);
        rc = kmsadm_open_source(a->db_path, true, &live);
        if (rc == KMSADM_OK)
            rc = kmsadm_copy_db(live, keep, false, &pages);
        sqlite3_close(live);
        if (rc == KMSADM_OK)
            printf("restore: the database it replaces is kept as %s\n", keep);
    }
    if (rc == KMSADM_OK)
        rc = kmsadm_copy_db(b, a->db_path, true, &pages);
    sqlite3_close(b);
    if (rc != KMSADM_OK)
        return rc;
    printf("restore: %s restored from %s (%d pages); start kmsd (it migrates an older schema)\n",
           a->db_path, argv[optind], pages);
    return KMSADM_OK;
}
