/*
 * db.c - SQLite connections (one per thread), transactions, statement cache and schema
 * migrations.
 *
 * Durability: WAL with synchronous=FULL, so a request acknowledged after its commit survives a
 * crash or power loss (docs/security.md §17 explains the choice; the settings are
 * checked by tests/unit/test_store_durability.c and tests/integration/test_crash_consistency.py).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "kms/log.h"

static char *kms_db_path;
static pthread_key_t kms_db_key;
static pthread_once_t kms_db_key_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t kms_db_lock = PTHREAD_MUTEX_INITIALIZER;
/* Every open connection, so shutdown can close the ones of threads that are gone. */
static struct kms_db **kms_db_all;
static size_t kms_db_all_count;

/*
 * Schema migrations, applied in order; schema_version in meta says how many ran. Never edit a
 * migration that has shipped: add a new one.
 */
static const char *const kms_migrations[] = {
    /* 1: keys, versions, aliases, tags, access keys, replay nonces */
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE keys ("
    "  key_id TEXT PRIMARY KEY,"
    "  description TEXT NOT NULL,"
    "  key_spec INTEGER NOT NULL,"
    "  key_usage INTEGER NOT NULL,"
    "  origin INTEGER NOT NULL,"
    "  protection INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  delete_at INTEGER NOT NULL DEFAULT 0,"
    "  material_expire_at INTEGER NOT NULL DEFAULT 0,"
    "  primary_version TEXT NOT NULL DEFAULT '',"
    "  rotation_interval INTEGER NOT NULL DEFAULT 0,"
    "  last_rotation_at INTEGER NOT NULL DEFAULT 0,"
    "  next_rotation_at INTEGER NOT NULL DEFAULT 0,"
    "  deletion_protection INTEGER NOT NULL DEFAULT 0,"
    "  deletion_protection_desc TEXT NOT NULL DEFAULT '',"
    "  internal INTEGER NOT NULL DEFAULT 0,"
    "  material_fingerprint BLOB);"
    "CREATE TABLE key_versions ("
    "  version_id TEXT PRIMARY KEY,"
    "  key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL,"
    "  material BLOB,"
    "  public_der BLOB);"
    "CREATE INDEX key_versions_by_key ON key_versions(key_id, created_at);"
    "CREATE TABLE aliases ("
    "  alias_name TEXT PRIMARY KEY,"
    "  key_id TEXT NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX aliases_by_key ON aliases(key_id);"
    "CREATE TABLE tags ("
    "  resource_type TEXT NOT NULL,"
    "  resource_id TEXT NOT NULL,"
    "  tag_key TEXT NOT NULL,"
    "  tag_value TEXT NOT NULL,"
    "  PRIMARY KEY (resource_type, resource_id, tag_key));"
    "CREATE TABLE access_keys ("
    "  access_key_id TEXT PRIMARY KEY,"
    "  secret_wrapped BLOB NOT NULL,"
    "  admin INTEGER NOT NULL,"
    "  aap_name TEXT NOT NULL DEFAULT '',"
    "  description TEXT NOT NULL DEFAULT '',"
    "  enabled INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE nonces (hash INTEGER PRIMARY KEY, expires_at INTEGER NOT NULL);"
    "CREATE INDEX nonces_by_expiry ON nonces(expires_at);",
    /*
     * 2: secrets manager. A version keeps its value envelope-encrypted: data_key is a fresh
     * 256-bit data key sealed under the secret's CMK (a CiphertextBlob), sealed_value the value
     * under that data key; both bound to (secret name, version id, data type). A stage label is on
     * at most one version of a secret: (secret_name, stage) is the primary key.
     */
    "CREATE TABLE secrets ("
    "  secret_name TEXT PRIMARY KEY,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  encryption_key_id TEXT NOT NULL,"
    "  secret_type TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  delete_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX secrets_by_delete ON secrets(delete_at) WHERE delete_at > 0;"
    "CREATE TABLE secret_versions ("
    "  secret_name TEXT NOT NULL REFERENCES secrets(secret_name) ON DELETE CASCADE,"
    "  version_id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  data_type TEXT NOT NULL,"
    "  data_key BLOB NOT NULL,"
    "  sealed_value BLOB NOT NULL,"
    "  PRIMARY KEY (secret_name, version_id));"
    "CREATE TABLE secret_stages ("
    "  secret_name TEXT NOT NULL,"
    "  stage TEXT NOT NULL,"
    "  version_id TEXT NOT NULL,"
    "  PRIMARY KEY (secret_name, stage),"
    "  FOREIGN KEY (secret_name, version_id) REFERENCES secret_versions(secret_name, version_id)"
    "    ON DELETE CASCADE);"
    "CREATE INDEX secret_stages_by_version ON secret_stages(secret_name, version_id);",
    /*
     * 3: ids of the versions of destroyed keys, so that Decrypt can tell a blob of a destroyed
     * key (404 Forbidden.KeyNotFound) from a tampered one naming a version that never existed
     * (400 InvalidParameter). Ids only: nothing secret outlives the key.
     */
    "CREATE TABLE destroyed_versions (version_id TEXT PRIMARY KEY, destroyed_at INTEGER NOT NULL);",
    /* 4: access control (spec/actions.md I): network rules, policies, application access
     * points with their policy links, client keys; access keys already carry aap_name. */
    "CREATE TABLE network_rules ("
    "  name TEXT PRIMARY KEY,"
    "  rule_type TEXT NOT NULL,"
    "  source_ips TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE policies ("
    "  name TEXT PRIMARY KEY,"
    "  permissions TEXT NOT NULL,"
    "  resources TEXT NOT NULL,"
    "  kms_instance TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE policy_network_rules ("
    "  policy_name TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,"
    "  rule_name TEXT NOT NULL REFERENCES network_rules(name),"
    "  position INTEGER NOT NULL,"
    "  PRIMARY KEY (policy_name, rule_name));"
    "CREATE INDEX policy_network_rules_by_rule ON policy_network_rules(rule_name);"
    "CREATE TABLE aaps ("
    "  name TEXT PRIMARY KEY,"
    "  auth_method TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE aap_policies ("
    "  aap_name TEXT NOT NULL REFERENCES aaps(name) ON DELETE CASCADE,"
    "  policy_name TEXT NOT NULL REFERENCES policies(name),"
    "  position INTEGER NOT NULL,"
    "  PRIMARY KEY (aap_name, policy_name));"
    "CREATE INDEX aap_policies_by_policy ON aap_policies(policy_name);"
    "CREATE TABLE client_keys ("
    "  client_key_id TEXT PRIMARY KEY,"
    "  aap_name TEXT NOT NULL REFERENCES aaps(name),"
    "  key_algorithm TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  public_cert TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX client_keys_by_aap ON client_keys(aap_name, created_at);"
    "CREATE INDEX access_keys_by_aap ON access_keys(aap_name, created_at);",
    /*
     * 5: certificates (spec/actions.md H). private_wrapped is the PKCS#8 private key wrapped by the
     * software keystore's master key (AAD "certificate/<id>" ‖ <id>), NULL when a token holds it;
     * never plaintext. Texts are "" until a certificate is uploaded; sans is a JSON array.
     */
    "CREATE TABLE certificates ("
    "  certificate_id TEXT PRIMARY KEY,"
    "  subject TEXT NOT NULL,"
    "  sans TEXT NOT NULL DEFAULT '[]',"
    "  key_spec INTEGER NOT NULL,"
    "  protection INTEGER NOT NULL,"
    "  exportable INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  csr TEXT NOT NULL DEFAULT '',"
    "  certificate TEXT NOT NULL DEFAULT '',"
    "  chain TEXT NOT NULL DEFAULT '',"
    "  issuer TEXT NOT NULL DEFAULT '',"
    "  serial TEXT NOT NULL DEFAULT '',"
    "  not_before INTEGER NOT NULL DEFAULT 0,"
    "  not_after INTEGER NOT NULL DEFAULT 0,"
    "  signature_algorithm TEXT NOT NULL DEFAULT '',"
    "  ski TEXT NOT NULL DEFAULT '',"
    "  public_der BLOB NOT NULL,"
    "  private_wrapped BLOB,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX certificates_by_created ON certificates(created_at);",
    /*
     * 6: the replay cache's durable copy as one row per flush (src/store/nonces.c). The nonces
     * stored so far move over one per row, their hash kept as an INTEGER, which the load reads
     * as such: none is forgotten, so no request from before the upgrade can be replayed.
     */
    "CREATE TABLE nonce_batches ("
    "  id INTEGER PRIMARY KEY,"
    "  expires_max INTEGER NOT NULL,"
    "  entries BLOB NOT NULL);"
    "CREATE INDEX nonce_batches_by_expiry ON nonce_batches(expires_max);"
    "INSERT INTO nonce_batches (expires_max, entries) SELECT expires_at, hash FROM nonces;"
    "DROP TABLE nonces;",
};

static void kms_db_close(struct kms_db *db)
{
    if (db == NULL)
        return;
    for (int i = 0; i < db->db_stmt_count; i++)
        sqlite3_finalize(db->db_stmts[i]);
    free(db->db_stmts);
    free(db->db_stmt_sql);
    sqlite3_close(db->db_handle);
    free(db);
}

static void kms_db_forget(struct kms_db *db)
{
    pthread_mutex_lock(&kms_db_lock);
    for (size_t i = 0; i < kms_db_all_count; i++) {
        if (kms_db_all[i] == db) {
            kms_db_all[i] = kms_db_all[--kms_db_all_count];
            break;
        }
    }
    pthread_mutex_unlock(&kms_db_lock);
}

static void kms_db_thread_exit(void *p)
{
    kms_db_forget(p);
    kms_db_close(p);
}

static void kms_db_make_key(void)
{
    pthread_key_create(&kms_db_key, kms_db_thread_exit);
}

static kms_err kms_db_exec(struct kms_db *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db->db_handle, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        kms_log_error("store: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return rc == SQLITE_BUSY ? KMS_E_UNAVAILABLE : KMS_E_INTERNAL;
    }
    return KMS_OK;
}

static kms_err kms_db_open(struct kms_db **out)
{
    struct kms_db *db = calloc(1, sizeof(*db));
    int rc;

    if (db == NULL)
        return KMS_E_INTERNAL;
    rc = sqlite3_open_v2(kms_db_path, &db->db_handle,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        kms_log_error("store: cannot open %s: %s", kms_db_path, sqlite3_errstr(rc));
        kms_db_close(db);
        return KMS_E_INTERNAL;
    }
    /* Writers queue behind BEGIN IMMEDIATE instead of failing at once. */
    sqlite3_busy_timeout(db->db_handle, 10000);
    /*
     * synchronous=FULL in WAL mode: COMMIT returns only after the WAL is fsynced, so a request
     * answered after its commit survives a crash or a power cut (docs/security.md §17).
     * journal_size_limit truncates the WAL back to 16 MiB after a checkpoint has reset it, so
     * one burst of writes does not keep a large WAL (with old page images) on disk for ever.
     * Checkpoints stay automatic (every 1000 pages).
     */
    if (kms_db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                        "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON; "
                        "PRAGMA journal_size_limit=16777216;") != KMS_OK) {
        kms_db_close(db);
        return KMS_E_INTERNAL;
    }
    pthread_mutex_lock(&kms_db_lock);
    {
        struct kms_db **all = realloc(kms_db_all, (kms_db_all_count + 1) * sizeof(*all));
        if (all != NULL) {
            kms_db_all = all;
            kms_db_all[kms_db_all_count++] = db;
        }
    }
    pthread_mutex_unlock(&kms_db_lock);
    *out = db;
    return KMS_OK;
}

kms_err kms_store_init(const char *path)
{
    struct kms_db *db;

    pthread_once(&kms_db_key_once, kms_db_make_key);
    free(kms_db_path);
    kms_db_path = strdup(path);
    if (kms_db_path == NULL)
        return KMS_E_INTERNAL;
    db = kms_store_thread();
    return db ? KMS_OK : KMS_E_INTERNAL;
}

struct kms_db *kms_store_thread(void)
{
    struct kms_db *db;

    pthread_once(&kms_db_key_once, kms_db_make_key);
    db = pthread_getspecific(kms_db_key);
    if (db != NULL)
        return db;
    if (kms_db_open(&db) != KMS_OK)
        return NULL;
    pthread_setspecific(kms_db_key, db);
    return db;
}

void kms_store_thread_done(void)
{
    struct kms_db *db = pthread_getspecific(kms_db_key);

    if (db == NULL)
        return;
    pthread_setspecific(kms_db_key, NULL);
    kms_db_forget(db);
    kms_db_close(db);
}

void kms_store_shutdown(void)
{
    struct kms_db *db = kms_db_path != NULL ? pthread_getspecific(kms_db_key) : NULL;

    /*
     * Fold the WAL into the database file: a clean stop leaves one self-contained file (the last
     * connection to close then removes the WAL). PASSIVE never waits for, or blocks, another
     * process: kmsadm's reading commands end here too while kmsd runs.
     */
    if (db != NULL && kms_db_exec(db, "PRAGMA wal_checkpoint(PASSIVE)") != KMS_OK)
        kms_log_warn("store: could not checkpoint the write-ahead log at shutdown");
    kms_store_thread_done();
    pthread_mutex_lock(&kms_db_lock);
    for (size_t i = 0; i < kms_db_all_count; i++)
        kms_db_close(kms_db_all[i]);
    free(kms_db_all);
    kms_db_all = NULL;
    kms_db_all_count = 0;
    pthread_mutex_unlock(&kms_db_lock);
    free(kms_db_path);
    kms_db_path = NULL;
}

kms_err kms_store_migrate(void)
{
    struct kms_db *db = kms_store_thread();
    sqlite3_stmt *st = NULL;
    int version = 0;
    kms_err rc;

    if (db == NULL)
        return KMS_E_INTERNAL;
    rc = kms_store_begin(db);
    if (rc != KMS_OK)
        return rc;
    if (sqlite3_prepare_v2(db->db_handle, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > (int)(sizeof(kms_migrations) / sizeof(kms_migrations[0]))) {
        kms_log_error("store: schema version %d is newer than this kmsd understands", version);
        kms_store_rollback(db);
        return KMS_E_INTERNAL;
    }
    for (size_t i = (size_t)version; i < sizeof(kms_migrations) / sizeof(kms_migrations[0]); i++) {
        char pragma[64];

        rc = kms_db_exec(db, kms_migrations[i]);
        if (rc != KMS_OK) {
            kms_store_rollback(db);
            return rc;
        }
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%zu", i + 1);
        rc = kms_db_exec(db, pragma);
        if (rc != KMS_OK) {
            kms_store_rollback(db);
            return rc;
        }
        kms_log_info("store: applied schema migration %zu", i + 1);
    }
    return kms_store_commit(db);
}

kms_err kms_store_begin(struct kms_db *db)
{
    kms_err rc = kms_db_exec(db, "BEGIN IMMEDIATE");

    if (rc == KMS_OK)
        db->db_in_tx = 1;
    return rc;
}

kms_err kms_store_commit(struct kms_db *db)
{
    kms_err rc = kms_db_exec(db, "COMMIT");

    if (rc != KMS_OK)
        kms_store_rollback(db);
    db->db_in_tx = 0;
    return rc;
}

void kms_store_rollback(struct kms_db *db)
{
    if (sqlite3_get_autocommit(db->db_handle) == 0)
        sqlite3_exec(db->db_handle, "ROLLBACK", NULL, NULL, NULL);
    db->db_in_tx = 0;
}

sqlite3_stmt *kms_db_stmt(struct kms_db *db, const char *sql)
{
    sqlite3_stmt *st;
    int rc;

    for (int i = 0; i < db->db_stmt_count; i++) {
        if (db->db_stmt_sql[i] == sql) {
            sqlite3_reset(db->db_stmts[i]);
            sqlite3_clear_bindings(db->db_stmts[i]);
            return db->db_stmts[i];
        }
    }
    rc = sqlite3_prepare_v3(db->db_handle, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        kms_log_error("store: cannot prepare statement: %s", sqlite3_errmsg(db->db_handle));
        return NULL;
    }
    if (db->db_stmt_count == db->db_stmt_cap) {
        int cap = db->db_stmt_cap ? db->db_stmt_cap * 2 : 64;
        const char **sqls = realloc(db->db_stmt_sql, (size_t)cap * sizeof(*sqls));
        sqlite3_stmt **stmts;

        if (sqls != NULL)
            db->db_stmt_sql = sqls;
        stmts = sqls ? realloc(db->db_stmts, (size_t)cap * sizeof(*stmts)) : NULL;
        if (stmts == NULL) {
            sqlite3_finalize(st);
            return NULL;
        }
        db->db_stmts = stmts;
        db->db_stmt_cap = cap;
    }
    db->db_stmt_sql[db->db_stmt_count] = sql;
    db->db_stmts[db->db_stmt_count++] = st;
    return st;
}

kms_err kms_db_err(struct kms_db *db, int rc, const char *what)
{
    int primary = rc & 0xff;

    if (primary == SQLITE_CONSTRAINT)
        return KMS_E_RESOURCE_EXISTS;
    kms_log_error("store: %s: %s", what, sqlite3_errmsg(db->db_handle));
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        return KMS_E_UNAVAILABLE;
    return KMS_E_INTERNAL;
}

kms_err kms_db_exec_stmt(struct kms_db *db, sqlite3_stmt *st, const char *what)
{
    int rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return kms_db_err(db, rc, what);
    return KMS_OK;
}

kms_err kms_db_exec_text(struct kms_db *db, const char *sql, const char *text, const char *what)
{
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, what);
}

char *kms_db_column_strdup(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);

    return kms_strndup(s ? (const char *)s : "", s ? (size_t)n : 0);
}

void kms_db_column_copy(sqlite3_stmt *st, int col, char *buf, size_t size)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    size_t n = s ? (size_t)sqlite3_column_bytes(st, col) : 0;

    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(buf, s, n);
    buf[n] = '\0';
}

kms_err kms_db_collect_ids(struct kms_db *db, sqlite3_stmt *st, char ***ids, size_t *count)
{
    char **list = NULL;
    size_t n = 0, cap = 0;
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            char **grown;
            cap = cap ? cap * 2 : 16;
            grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL)
                goto oom;
            list = grown;
        }
        list[n] = kms_db_column_strdup(st, 0);
        if (list[n] == NULL)
            goto oom;
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        kms_store_free_list(list, n);
        return kms_db_err(db, rc, "list");
    }
    *ids = list;
    *count = n;
    return KMS_OK;
oom:
    sqlite3_reset(st);
    kms_store_free_list(list, n);
    return KMS_E_INTERNAL;
}

void kms_store_free_list(char **ids, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(ids[i]);
    free(ids);
}

kms_err kms_store_meta_get(struct kms_db *db, const char *name, struct kms_buf *out)
{
    static const char sql[] = "SELECT value FROM meta WHERE name = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    int rc;
    kms_err err = KMS_E_RESOURCE_NOT_FOUND;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        err = kms_buf_append(out, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    else if (rc != SQLITE_DONE)
        err = kms_db_err(db, rc, "meta get");
    sqlite3_reset(st);
    return err;
}

kms_err kms_store_meta_set(struct kms_db *db, const char *name, const void *value, size_t len)
{
    static const char sql[] = "INSERT INTO meta(name, value) VALUES (?, ?) "
                              "ON CONFLICT(name) DO UPDATE SET value = excluded.value";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, value, (int)len, SQLITE_STATIC);
    return kms_db_exec_stmt(db, st, "meta set");
}

kms_err kms_db_count(struct kms_db *db, sqlite3_stmt *st, int64_t *out)
{
    int rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return kms_db_err(db, rc, "count");
    return KMS_OK;
}

int kms_store_schema_latest(void)
{
    return (int)(sizeof(kms_migrations) / sizeof(kms_migrations[0]));
}
