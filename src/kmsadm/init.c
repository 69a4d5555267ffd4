/*
 * init.c - kmsadm init: a new data directory, ready for kmsd (and for systemd, where kmsd has
 * no terminal to show a first admin secret on): the directory (0700), the master key (unless
 * the configured one exists, e.g. /etc/kmsd/master.key made beforehand), the database at the
 * current schema with its master-key check value, and an admin access key shown once.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kms/daemon.h"
#include "kms/store.h"
#include "kmsadm.h"

int kmsadm_cmd_init(struct kmsadm *a, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"admin-access-key-id", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    const char *id = getenv("KMSD_ADMIN_ACCESS_KEY_ID");
    const char *secret = getenv("KMSD_ADMIN_ACCESS_KEY_SECRET");
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt != 'i')
            return KMSADM_USAGE;
        id = optarg;
        secret = NULL;
    }
    if (optind != argc)
        return kmsadm_fail("init: unexpected argument %s", argv[optind]);
    if (id != NULL && id[0] == '\0')
        id = NULL;
    if (id == NULL || (secret != NULL && secret[0] == '\0'))
        secret = NULL;
    if (secret != NULL && strlen(secret) < 8)
        return kmsadm_fail("init: KMSD_ADMIN_ACCESS_KEY_SECRET needs at least 8 characters");
    if (mkdir(a->cfg.data_dir, 0700) != 0 && errno != EEXIST)
        return kmsadm_fail("init: cannot create %s: %s", a->cfg.data_dir, strerror(errno));
    rc = kmsadm_lock(a, "init");
    if (rc != KMSADM_OK)
        return rc;
    if (kmsadm_exists(a->db_path))
        return kmsadm_fail("init: %s holds a database already; nothing was changed",
                           a->cfg.data_dir);
    rc = kmsadm_open_keystores(a, true);
    if (rc == KMSADM_OK)
        rc = kmsadm_open_store(a, false, true);
    if (rc != KMSADM_OK)
        return rc;
    if (kms_master_check(kms_store_thread(), true) != KMS_OK)
        return kmsadm_fail("init: cannot record the master key's check value");
    printf("initialised %s (database %s, master key %s)\n", a->cfg.data_dir, a->db_path,
           a->cfg.pkcs11_seal_master_key ? "in the PKCS#11 token" : a->cfg.master_key_file);
    return kmsadm_access_key_create(a, id, secret, "admin", NULL);
}
