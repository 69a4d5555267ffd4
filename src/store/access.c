/*
 * access.c - the tables of access control (spec/actions.md I): network rules, permission
 * policies with their network-rule links, application access points (AAPs) with their policy
 * links, and client keys. Access keys live in access_keys.c.
 *
 * Links keep the order the caller gave (a position column), so Describe* echo lists as sent.
 * References are checked here, inside the caller's transaction, so "in use" is decided under the
 * write lock; the foreign keys of the schema are only a backstop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

static void kms_names_free(char **names, size_t count)
{
    kms_store_free_list(names, count);
}

void kms_network_rule_record_free(struct kms_network_rule_record *r)
{
    free(r->source_ips);
    free(r->description);
    r->source_ips = NULL;
    r->description = NULL;
}

void kms_policy_record_free(struct kms_policy_record *p)
{
    free(p->permissions);
    free(p->resources);
    free(p->kms_instance);
    free(p->description);
    kms_names_free(p->rules, p->rule_count);
    p->permissions = p->resources = p->kms_instance = p->description = NULL;
    p->rules = NULL;
    p->rule_count = 0;
}

void kms_aap_record_free(struct kms_aap_record *a)
{
    free(a->description);
    kms_names_free(a->policies, a->policy_count);
    a->description = NULL;
    a->policies = NULL;
    a->policy_count = 0;
}

void kms_client_key_record_free(struct kms_client_key_record *c)
{
    free(c->public_cert);
    c->public_cert = NULL;
}

void kms_store_free_network_rules(struct kms_network_rule_record *r, size_t count)
{
    for (size_t i = 0; r != NULL && i < count; i++)
        kms_network_rule_record_free(&r[i]);
    free(r);
}

void kms_store_free_aaps(struct kms_aap_record *a, size_t count)
{
    for (size_t i = 0; a != NULL && i < count; i++)
        kms_aap_record_free(&a[i]);
    free(a);
}

void kms_store_free_client_keys(struct kms_client_key_record *c, size_t count)
{
    for (size_t i = 0; c != NULL && i < count; i++)
        kms_client_key_record_free(&c[i]);
    free(c);
}

/* Runs a statement that changes one row by name: KMS_E_RESOURCE_NOT_FOUND when none changed. */
static kms_err kms_access_exec_one(struct kms_db *db, sqlite3_stmt *st, const char *what)
{
    kms_err rc = kms_db_exec_stmt(db, st, what);

    if (rc == KMS_OK && sqlite3_changes(db->db_handle) == 0)
        return KMS_E_RESOURCE_NOT_FOUND;
    return rc;
}

/* count(*) of a statement with one text parameter. */
static kms_err kms_access_count(struct kms_db *db, const char *sql, const char *arg, int64_t *out)
{
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st != NULL)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    return kms_db_count(db, st, out);
}

/* Inserts the ordered links (owner, names[i], i) with a statement of three parameters. */
static kms_err kms_access_links_insert(struct kms_db *db, const char *sql, const char *owner,
                                       char *const *names, size_t count)
{
    kms_err rc = KMS_OK;

    for (size_t i = 0; rc == KMS_OK && i < count; i++) {
        sqlite3_stmt *st = kms_db_stmt(db, sql);

        if (st == NULL)
            return KMS_E_INTERNAL;
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, names[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)i);
        rc = kms_db_exec_stmt(db, st, "access link insert");
    }
    return rc;
}

/* Collects column 0 of a statement with one text parameter. */
static kms_err kms_access_names(struct kms_db *db, const char *sql, const char *arg, char ***out,
                                size_t *count)
{
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    return kms_db_collect_ids(db, st, out, count);
}

/* An existence check by name: KMS_OK or KMS_E_RESOURCE_NOT_FOUND. */
static kms_err kms_access_exists(struct kms_db *db, const char *sql, const char *name)
{
    int64_t n = 0;
    kms_err rc = kms_access_count(db, sql, name, &n);

    if (rc == KMS_OK && n == 0)
        return KMS_E_RESOURCE_NOT_FOUND;
    return rc;
}

/* ---- network rules ---- */

kms_err kms_store_network_rule_insert(struct kms_db *db, const struct kms_network_rule_record *r)
{
    static const char sql[] = "INSERT INTO network_rules (name, rule_type, source_ips, "
                              "description, created_at) VALUES (?,?,?,?,?)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->rule_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->source_ips, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->description ? r->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->created_at);
    return kms_db_exec_stmt(db, st, "network rule insert");
}

kms_err kms_store_network_rule_get(struct kms_db *db, const char *name,
                                   struct kms_network_rule_record *out)
{
    static const char sql[] = "SELECT name, rule_type, source_ips, description, created_at "
                              "FROM network_rules WHERE name = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        kms_db_column_copy(st, 0, out->name, sizeof(out->name));
        kms_db_column_copy(st, 1, out->rule_type, sizeof(out->rule_type));
        out->source_ips = kms_db_column_strdup(st, 2);
        out->description = kms_db_column_strdup(st, 3);
        out->created_at = sqlite3_column_int64(st, 4);
        if (out->source_ips == NULL || out->description == NULL) {
            kms_network_rule_record_free(out);
            err = KMS_E_INTERNAL;
        }
    } else if (rc == SQLITE_DONE) {
        err = KMS_E_RESOURCE_NOT_FOUND;
    } else {
        err = kms_db_err(db, rc, "network rule get");
    }
    sqlite3_reset(st);
    return err;
}

kms_err kms_store_network_rule_exists(struct kms_db *db, const char *name)
{
    static const char sql[] = "SELECT count(*) FROM network_rules WHERE name = ?";

    return kms_access_exists(db, sql, name);
}

kms_err kms_store_network_rule_update(struct kms_db *db, const struct kms_network_rule_record *r)
{
    static const char sql[] = "UPDATE network_rules SET source_ips = ?, description = ? "
                              "WHERE name = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, r->source_ips, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->description ? r->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->name, -1, SQLITE_STATIC);
    return kms_access_exec_one(db, st, "network rule update");
}

kms_err kms_store_network_rule_delete(struct kms_db *db, const char *name)
{
    static const char used_sql[] = "SELECT count(*) FROM policy_network_rules WHERE rule_name = ?";
    static const char sql[] = "DELETE FROM network_rules WHERE name = ?";
    sqlite3_stmt *st;
    int64_t used = 0;
    kms_err rc = kms_store_network_rule_exists(db, name);

    if (rc == KMS_OK)
        rc = kms_access_count(db, used_sql, name, &used);
    if (rc == KMS_OK && used > 0)
        rc = KMS_E_RESOURCE_IN_USE;
    if (rc != KMS_OK)
        return rc;
    st = kms_db_stmt(db, sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return kms_access_exec_one(db, st, "network rule delete");
}

kms_err kms_store_network_rule_list(struct kms_db *db, int64_t offset, int64_t limit,
                                    struct kms_network_rule_record **out, size_t *count,
                                    int64_t *total)
{
    static const char count_sql[] = "SELECT count(*) FROM network_rules";
    static const char list_sql[] = "SELECT name, rule_type FROM network_rules "
                                   "ORDER BY created_at, rowid LIMIT ?1 OFFSET ?2";
    struct kms_network_rule_record *list;
    sqlite3_stmt *st = kms_db_stmt(db, count_sql);
    size_t n = 0;
    kms_err err = kms_db_count(db, st, total);
    int rc;

    if (err != KMS_OK)
        return err;
    st = kms_db_stmt(db, list_sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int64(st, 1, limit);
    sqlite3_bind_int64(st, 2, offset);
    list = calloc(limit > 0 ? (size_t)limit : 1, sizeof(*list));
    if (list == NULL) {
        sqlite3_reset(st);
        return KMS_E_INTERNAL;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (int64_t)n < limit) {
        kms_db_column_copy(st, 0, list[n].name, sizeof(list[n].name));
        kms_db_column_copy(st, 1, list[n].rule_type, sizeof(list[n].rule_type));
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        free(list);
        return kms_db_err(db, rc, "network rule list");
    }
    *out = list;
    *count = n;
    return KMS_OK;
}

/* ---- policies ---- */

static const char kms_policy_link_sql[] =
    "INSERT INTO policy_network_rules (policy_name, rule_name, position) VALUES (?,?,?)";

kms_err kms_store_policy_insert(struct kms_db *db, const struct kms_policy_record *p)
{
    static const char sql[] = "INSERT INTO policies (name, permissions, resources, kms_instance, "
                              "description, created_at) VALUES (?,?,?,?,?,?)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->permissions, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->resources, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->kms_instance, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p->description ? p->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, p->created_at);
    rc = kms_db_exec_stmt(db, st, "policy insert");
    if (rc == KMS_OK)
        rc = kms_access_links_insert(db, kms_policy_link_sql, p->name, p->rules, p->rule_count);
    return rc;
}

kms_err kms_store_policy_get(struct kms_db *db, const char *name, struct kms_policy_record *out)
{
    static const char sql[] = "SELECT name, permissions, resources, kms_instance, description, "
                              "created_at FROM policies WHERE name = ?";
    static const char rules_sql[] = "SELECT rule_name FROM policy_network_rules "
                                    "WHERE policy_name = ? ORDER BY position";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        kms_db_column_copy(st, 0, out->name, sizeof(out->name));
        out->permissions = kms_db_column_strdup(st, 1);
        out->resources = kms_db_column_strdup(st, 2);
        out->kms_instance = kms_db_column_strdup(st, 3);
        out->description = kms_db_column_strdup(st, 4);
        out->created_at = sqlite3_column_int64(st, 5);
        if (out->permissions == NULL || out->resources == NULL || out->kms_instance == NULL ||
            out->description == NULL)
            err = KMS_E_INTERNAL;
    } else if (rc == SQLITE_DONE) {
        err = KMS_E_RESOURCE_NOT_FOUND;
    } else {
        err = kms_db_err(db, rc, "policy get");
    }
    sqlite3_reset(st);
    if (err == KMS_OK)
        err = kms_access_names(db, rules_sql, name, &out->rules, &out->rule_count);
    if (err != KMS_OK)
        kms_policy_record_free(out);
    return err;
}

kms_err kms_store_policy_exists(struct kms_db *db, const char *name)
{
    static const char sql[] = "SELECT count(*) FROM policies WHERE name = ?";

    return kms_access_exists(db, sql, name);
}

kms_err kms_store_policy_update(struct kms_db *db, const struct kms_policy_record *p)
{
    static const char sql[] = "UPDATE policies SET permissions = ?, resources = ?, "
                              "kms_instance = ?, description = ? WHERE name = ?";
    static const char unlink_sql[] = "DELETE FROM policy_network_rules WHERE policy_name = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, p->permissions, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->resources, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->kms_instance, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->description ? p->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p->name, -1, SQLITE_STATIC);
    rc = kms_access_exec_one(db, st, "policy update");
    if (rc != KMS_OK)
        return rc;
    st = kms_db_stmt(db, unlink_sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
    rc = kms_db_exec_stmt(db, st, "policy unlink");
    if (rc == KMS_OK)
        rc = kms_access_links_insert(db, kms_policy_link_sql, p->name, p->rules, p->rule_count);
    return rc;
}

kms_err kms_store_policy_delete(struct kms_db *db, const char *name)
{
    static const char used_sql[] = "SELECT count(*) FROM aap_policies WHERE policy_name = ?";
    static const char sql[] = "DELETE FROM policies WHERE name = ?";
    sqlite3_stmt *st;
    int64_t used = 0;
    kms_err rc = kms_store_policy_exists(db, name);

    if (rc == KMS_OK)
        rc = kms_access_count(db, used_sql, name, &used);
    if (rc == KMS_OK && used > 0)
        rc = KMS_E_RESOURCE_IN_USE;
    if (rc != KMS_OK)
        return rc;
    st = kms_db_stmt(db, sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return kms_access_exec_one(db, st, "policy delete");
}

kms_err kms_store_policy_list(struct kms_db *db, int64_t offset, int64_t limit, char ***names,
                              size_t *count, int64_t *total)
{
    static const char count_sql[] = "SELECT count(*) FROM policies";
    static const char list_sql[] = "SELECT name FROM policies ORDER BY created_at, rowid "
                                   "LIMIT ? OFFSET ?";
    sqlite3_stmt *st = kms_db_stmt(db, count_sql);
    kms_err rc = kms_db_count(db, st, total);

    if (rc != KMS_OK)
        return rc;
    st = kms_db_stmt(db, list_sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int64(st, 1, limit);
    sqlite3_bind_int64(st, 2, offset);
    return kms_db_collect_ids(db, st, names, count);
}

/* ---- application access points ---- */

static const char kms_aap_link_sql[] =
    "INSERT INTO aap_policies (aap_name, policy_name, position) VALUES (?,?,?)";

kms_err kms_store_aap_insert(struct kms_db *db, const struct kms_aap_record *a)
{
    static const char sql[] = "INSERT INTO aaps (name, auth_method, description, created_at) "
                              "VALUES (?,?,?,?)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->auth_method, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->description ? a->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, a->created_at);
    rc = kms_db_exec_stmt(db, st, "aap insert");
    if (rc == KMS_OK)
        rc = kms_access_links_insert(db, kms_aap_link_sql, a->name, a->policies, a->policy_count);
    return rc;
}

kms_err kms_store_aap_get(struct kms_db *db, const char *name, struct kms_aap_record *out)
{
    static const char sql[] = "SELECT name, auth_method, description, created_at FROM aaps "
                              "WHERE name = ?";
    static const char policies_sql[] = "SELECT policy_name FROM aap_policies WHERE aap_name = ? "
                                       "ORDER BY position";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err = KMS_OK;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        kms_db_column_copy(st, 0, out->name, sizeof(out->name));
        kms_db_column_copy(st, 1, out->auth_method, sizeof(out->auth_method));
        out->description = kms_db_column_strdup(st, 2);
        out->created_at = sqlite3_column_int64(st, 3);
        if (out->description == NULL)
            err = KMS_E_INTERNAL;
    } else if (rc == SQLITE_DONE) {
        err = KMS_E_RESOURCE_NOT_FOUND;
    } else {
        err = kms_db_err(db, rc, "aap get");
    }
    sqlite3_reset(st);
    if (err == KMS_OK)
        err = kms_access_names(db, policies_sql, name, &out->policies, &out->policy_count);
    if (err != KMS_OK)
        kms_aap_record_free(out);
    return err;
}

kms_err kms_store_aap_update(struct kms_db *db, const struct kms_aap_record *a)
{
    static const char sql[] = "UPDATE aaps SET description = ? WHERE name = ?";
    static const char unlink_sql[] = "DELETE FROM aap_policies WHERE aap_name = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, a->description ? a->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->name, -1, SQLITE_STATIC);
    rc = kms_access_exec_one(db, st, "aap update");
    if (rc != KMS_OK)
        return rc;
    st = kms_db_stmt(db, unlink_sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
    rc = kms_db_exec_stmt(db, st, "aap unlink");
    if (rc == KMS_OK)
        rc = kms_access_links_insert(db, kms_aap_link_sql, a->name, a->policies, a->policy_count);
    return rc;
}

kms_err kms_store_aap_delete(struct kms_db *db, const char *name)
{
    static const char exists_sql[] = "SELECT count(*) FROM aaps WHERE name = ?";
    static const char client_sql[] = "SELECT count(*) FROM client_keys WHERE aap_name = ?";
    static const char sql[] = "DELETE FROM aaps WHERE name = ?";
    sqlite3_stmt *st;
    int64_t client_keys = 0, access_keys = 0;
    kms_err rc = kms_access_exists(db, exists_sql, name);

    if (rc == KMS_OK)
        rc = kms_access_count(db, client_sql, name, &client_keys);
    if (rc == KMS_OK)
        rc = kms_store_access_key_count_aap(db, name, &access_keys);
    if (rc == KMS_OK && client_keys + access_keys > 0)
        rc = KMS_E_RESOURCE_IN_USE;
    if (rc != KMS_OK)
        return rc;
    st = kms_db_stmt(db, sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return kms_access_exec_one(db, st, "aap delete");
}

kms_err kms_store_aap_list(struct kms_db *db, int64_t offset, int64_t limit,
                           struct kms_aap_record **out, size_t *count, int64_t *total)
{
    static const char count_sql[] = "SELECT count(*) FROM aaps";
    static const char list_sql[] = "SELECT name, auth_method FROM aaps "
                                   "ORDER BY created_at, rowid LIMIT ?1 OFFSET ?2";
    struct kms_aap_record *list;
    sqlite3_stmt *st = kms_db_stmt(db, count_sql);
    size_t n = 0;
    kms_err err = kms_db_count(db, st, total);
    int rc;

    if (err != KMS_OK)
        return err;
    st = kms_db_stmt(db, list_sql);
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_int64(st, 1, limit);
    sqlite3_bind_int64(st, 2, offset);
    list = calloc(limit > 0 ? (size_t)limit : 1, sizeof(*list));
    if (list == NULL) {
        sqlite3_reset(st);
        return KMS_E_INTERNAL;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (int64_t)n < limit) {
        kms_db_column_copy(st, 0, list[n].name, sizeof(list[n].name));
        kms_db_column_copy(st, 1, list[n].auth_method, sizeof(list[n].auth_method));
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        free(list);
        return kms_db_err(db, rc, "aap list");
    }
    *out = list;
    *count = n;
    return KMS_OK;
}

kms_err kms_store_aap_grants(struct kms_db *db, const char *aap_name, kms_store_grant_fn fn,
                             void *arg)
{
    static const char sql[] =
        "SELECT p.name, p.permissions, p.resources, pr.rule_name, r.source_ips "
        "FROM aap_policies ap JOIN policies p ON p.name = ap.policy_name "
        "LEFT JOIN policy_network_rules pr ON pr.policy_name = p.name "
        "LEFT JOIN network_rules r ON r.name = pr.rule_name "
        "WHERE ap.aap_name = ? ORDER BY ap.position, pr.position";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    int rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, aap_name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
           (const char *)sqlite3_column_text(st, 4), arg);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KMS_OK : kms_db_err(db, rc, "aap grants");
}

/* ---- client keys ---- */

kms_err kms_store_client_key_insert(struct kms_db *db, const struct kms_client_key_record *c)
{
    static const char sql[] = "INSERT INTO client_keys (client_key_id, aap_name, key_algorithm, "
                              "not_before, not_after, public_cert, created_at) "
                              "VALUES (?,?,?,?,?,?,?)";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, c->client_key_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->aap_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->key_algorithm, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, c->not_before);
    sqlite3_bind_int64(st, 5, c->not_after);
    sqlite3_bind_text(st, 6, c->public_cert, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, c->created_at);
    return kms_db_exec_stmt(db, st, "client key insert");
}

/* One row of SELECT client_key_id, aap_name, key_algorithm, not_before, not_after,
 * public_cert, created_at. */
static kms_err kms_client_key_row(sqlite3_stmt *st, struct kms_client_key_record *out)
{
    kms_db_column_copy(st, 0, out->client_key_id, sizeof(out->client_key_id));
    kms_db_column_copy(st, 1, out->aap_name, sizeof(out->aap_name));
    kms_db_column_copy(st, 2, out->key_algorithm, sizeof(out->key_algorithm));
    out->not_before = sqlite3_column_int64(st, 3);
    out->not_after = sqlite3_column_int64(st, 4);
    out->public_cert = kms_db_column_strdup(st, 5);
    out->created_at = sqlite3_column_int64(st, 6);
    return out->public_cert != NULL ? KMS_OK : KMS_E_INTERNAL;
}

kms_err kms_store_client_key_get(struct kms_db *db, const char *id,
                                 struct kms_client_key_record *out)
{
    static const char sql[] = "SELECT client_key_id, aap_name, key_algorithm, not_before, "
                              "not_after, public_cert, created_at FROM client_keys "
                              "WHERE client_key_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    kms_err err;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        err = kms_client_key_row(st, out);
    else if (rc == SQLITE_DONE)
        err = KMS_E_RESOURCE_NOT_FOUND;
    else
        err = kms_db_err(db, rc, "client key get");
    sqlite3_reset(st);
    return err;
}

kms_err kms_store_client_key_delete(struct kms_db *db, const char *id)
{
    static const char sql[] = "DELETE FROM client_keys WHERE client_key_id = ?";
    sqlite3_stmt *st = kms_db_stmt(db, sql);

    if (st == NULL)
        return KMS_E_INTERNAL;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return kms_access_exec_one(db, st, "client key delete");
}

kms_err kms_store_client_key_list(struct kms_db *db, const char *aap_name,
                                  struct kms_client_key_record **out, size_t *count)
{
    static const char sql[] = "SELECT client_key_id, aap_name, key_algorithm, not_before, "
                              "not_after, public_cert, created_at FROM client_keys "
                              "WHERE ?1 IS NULL OR aap_name = ?1 "
                              "ORDER BY created_at, rowid";
    struct kms_client_key_record *list = NULL;
    sqlite3_stmt *st = kms_db_stmt(db, sql);
    size_t n = 0, cap = 0;
    kms_err err = KMS_OK;
    int rc;

    if (st == NULL)
        return KMS_E_INTERNAL;
    if (aap_name != NULL)
        sqlite3_bind_text(st, 1, aap_name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            struct kms_client_key_record *grown;

            cap = cap ? cap * 2 : 8;
            grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL) {
                err = KMS_E_INTERNAL;
                break;
            }
            list = grown;
        }
        memset(&list[n], 0, sizeof(list[n]));
        err = kms_client_key_row(st, &list[n]);
        n++;
        if (err != KMS_OK)
            break;
    }
    sqlite3_reset(st);
    if (err == KMS_OK && rc != SQLITE_DONE)
        err = kms_db_err(db, rc, "client key list");
    if (err != KMS_OK) {
        kms_store_free_client_keys(list, n);
        return err;
    }
    *out = list;
    *count = n;
    return KMS_OK;
}
