/*
 * main.c - kmsadm's entry: global options (the same --config and --data-dir as kmsd, so both
 * see the same files), then one command (kmsadm.h lists them, `kmsadm help` explains them).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kms/log.h"
#include "kmsadm.h"

static void kmsadm_usage(FILE *to)
{
    fputs(
        "usage: kmsadm [--config FILE] [--data-dir DIR] [--verbose] COMMAND [ARGS]\n"
        "\n"
        "The operator's tool on a kmsd data directory. --config and --data-dir mean what they\n"
        "mean to kmsd (the data directory, the master key and [pkcs11] come from there).\n"
        "Commands that change data refuse to run while kmsd runs on the directory.\n"
        "\n"
        "  init [--admin-access-key-id ID]\n"
        "        create the data directory, the master key (unless it exists), the database\n"
        "        and an admin access key (shown once; KMSD_ADMIN_ACCESS_KEY_ID/SECRET choose it)\n"
        "  access-key create [--description TEXT] [--id ID]\n"
        "        a new admin access key; its secret is shown once\n"
        "  access-key create --aap NAME\n"
        "        an access key of an application access point (not in this build)\n"
        "  access-key list\n"
        "  access-key disable ID | access-key enable ID\n"
        "  backup FILE [--force]\n"
        "        a consistent copy of the database (SQLite online backup; kmsd may run);\n"
        "        the master key is not in it: keep it with the backup, apart\n"
        "  restore FILE [--force]\n"
        "        replace the database with a backup, atomically (kmsd must be stopped); the\n"
        "        database it replaces is kept as kmsd.db.before-restore\n"
        "  verify\n"
        "        schema version, integrity, and that every key version's material, every\n"
        "        access key's secret and every secret value opens; non-zero exit on a failure\n"
        "  rotate-master-key\n"
        "        a new master key; all material and sealed secrets re-wrapped in one\n"
        "        transaction; the old key kept as master.key.old (docs/operations.md)\n"
        "  help\n",
        to);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"data-dir", required_argument, NULL, 'd'},
        {"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    static const struct {
        const char *name;
        int (*fn)(struct kmsadm *, int, char **);
    } commands[] = {
        {"init", kmsadm_cmd_init},     {"access-key", kmsadm_cmd_access_key},
        {"backup", kmsadm_cmd_backup}, {"restore", kmsadm_cmd_restore},
        {"verify", kmsadm_cmd_verify}, {"rotate-master-key", kmsadm_cmd_rotate_master_key},
    };
    static struct kmsadm a;
    const char *config = NULL, *data_dir = NULL;
    char err[512];
    bool verbose = false;
    int opt, rc;

    /* "+": options end at the command; the command parses its own. */
    while ((opt = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 'd':
            data_dir = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            kmsadm_usage(stdout);
            return KMSADM_OK;
        case 'V':
            printf("kmsadm %s\n", KMSD_VERSION);
            return KMSADM_OK;
        default:
            kmsadm_usage(stderr);
            return KMSADM_USAGE;
        }
    }
    if (optind >= argc) {
        kmsadm_usage(stderr);
        return KMSADM_USAGE;
    }
    if (strcmp(argv[optind], "help") == 0) {
        kmsadm_usage(stdout);
        return KMSADM_OK;
    }
    kms_log_set_quiet(!verbose);
    umask(077);
    a.lock_fd = -1;
    kms_config_defaults(&a.cfg);
    if (config != NULL && !kms_config_load_file(&a.cfg, config, err, sizeof(err)))
        return kmsadm_fail("config: %s", err);
    if (data_dir != NULL &&
        !kms_config_set(&a.cfg, "server", "data_dir", data_dir, err, sizeof(err)))
        return kmsadm_fail("--data-dir: %s", err);
    if (!kms_config_finish(&a.cfg, err, sizeof(err)))
        return kmsadm_fail("config: %s", err);
    snprintf(a.db_path, sizeof(a.db_path), "%s/kmsd.db", a.cfg.data_dir);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[optind], commands[i].name) != 0)
            continue;
        /* Each command runs getopt again over its own arguments. */
        argc -= optind;
        argv += optind;
        optind = 0;
        rc = commands[i].fn(&a, argc, argv);
        kmsadm_close(&a);
        return rc;
    }
    kmsadm_fail("unknown command \"%s\" (kmsadm help lists them)", argv[optind]);
    return KMSADM_USAGE;
}
