/*
 * main.c - the kmsd daemon: flags and configuration, first-start setup of the data directory,
 * start-up in dependency order, signals, and a graceful stop.
 *
 *   kmsd --data-dir DIR --listen HOST:PORT [--config FILE] [--seed FILE]
 *
 * Flags win over the configuration file. Signals (docs/operations.md):
 *   SIGTERM, SIGINT  graceful stop: no new connections, requests under way are answered (up to
 *                    [server] shutdown_timeout), then timed work, the replay cache and the audit
 *                    log are flushed and the database checkpointed; exit status 0. A second
 *                    signal cuts the wait short.
 *   SIGHUP           reload the TLS certificate (a bad one keeps the old) and reopen the audit
 *                    log (log rotation).
 * Under systemd (Type=notify) kmsd reports READY=1, RELOADING=1 and STOPPING=1.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keystore/keystore.h"
#include "kms/api.h"
#include "kms/audit.h"
#include "kms/auth.h"
#include "kms/clock.h"
#include "kms/config.h"
#include "kms/crypto.h"
#include "kms/daemon.h"
#include "kms/harden.h"
#include "kms/http.h"
#include "kms/log.h"
#include "kms/store.h"

static const char *kms_seed_file;
static sigset_t kms_signals;

static void kms_usage(FILE *f)
{
    fprintf(f, "usage: kmsd [--config FILE] [--data-dir DIR] [--listen HOST:PORT] [--threads N]\n"
               "            [--region ID] [--seed FILE] [--insecure-plain-http] [--quiet]\n"
               "            [--version]\n"
               "\n"
               "A self-hosted KMS speaking Alibaba Cloud KMS's API (2016-01-20).\n"
               "Flags override the configuration file (see conf/kmsd.conf for every setting).\n"
               "--seed FILE creates the keys, aliases, secrets and access keys a JSON file\n"
               "describes before serving, leaving whatever exists alone (docs/seeding.md).\n");
}

/* Applies --config first, then every other flag over it. */
static void kms_parse_flags(int argc, char **argv, struct kms_config *cfg)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'},
        {"region", required_argument, NULL, 'r'},
        {"insecure-plain-http", no_argument, NULL, 'P'},
        {"quiet", no_argument, NULL, 'q'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {"seed", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    char err[512];
    int opt;

    kms_config_defaults(cfg);
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'c' && !kms_config_load_file(cfg, optarg, err, sizeof(err)))
            kms_fatal("config: %s", err);
        if (opt == '?') {
            kms_usage(stderr);
            exit(2);
        }
    }
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        bool ok = true;

        switch (opt) {
        case 'd':
            ok = kms_config_set(cfg, "server", "data_dir", optarg, err, sizeof(err));
            break;
        case 'l':
            ok = kms_config_set(cfg, "server", "listen", optarg, err, sizeof(err));
            break;
        case 't':
            ok = kms_config_set(cfg, "server", "threads", optarg, err, sizeof(err));
            break;
        case 'r':
            ok = kms_config_set(cfg, "server", "region", optarg, err, sizeof(err));
            break;
        case 's':
            kms_seed_file = optarg;
            break;
        case 'P':
            cfg->insecure_plain_http = true;
            break;
        case 'q':
            kms_log_set_quiet(1);
            break;
        case 'V':
            printf("kmsd %s\n", KMSD_VERSION);
            exit(0);
        case 'h':
            kms_usage(stdout);
            exit(0);
        }
        if (!ok)
            kms_fatal("flag: %s", err);
    }
    if (optind < argc) {
        kms_usage(stderr);
        exit(2);
    }
    if (!kms_config_finish(cfg, err, sizeof(err)))
        kms_fatal("config: %s", err);
    if (cfg->threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = cores > 0 ? (int)cores : 2;
    }
}

static void kms_make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        kms_fatal("cannot create directory %s: %s", path, strerror(errno));
}

/* The data directory, and its lock: held until exit, so no second kmsd (or a kmsadm command
 * that changes data) works on it meanwhile. */
static int kms_lock_data_dir(const struct kms_config *cfg)
{
    bool busy = false;
    int fd = -1;

    kms_make_dir(cfg->data_dir);
    if (kms_datadir_lock(cfg->data_dir, &fd, &busy) != KMS_OK) {
        if (busy)
            kms_fatal("the data directory %s is in use by another kmsd or a kmsadm command "
                      "(%s/%s is locked)",
                      cfg->data_dir, cfg->data_dir, KMS_LOCK_FILE);
        kms_fatal("cannot lock the data directory %s", cfg->data_dir);
    }
    return fd;
}

/* When the default TLS files are missing, a dev certificate. */
static void kms_prepare_tls(const struct kms_config *cfg)
{
    char tls_dir[PATH_MAX + 8];
    char default_cert[PATH_MAX + 32];

    snprintf(tls_dir, sizeof(tls_dir), "%s/tls", cfg->data_dir);
    snprintf(default_cert, sizeof(default_cert), "%s/cert.pem", tls_dir);
    if (strcmp(cfg->tls_cert_file, default_cert) == 0 && access(cfg->tls_cert_file, F_OK) != 0) {
        kms_make_dir(tls_dir);
        if (kms_devcert_create(cfg->tls_cert_file, cfg->tls_key_file, cfg->listen_host) != KMS_OK)
            kms_fatal("tls: cannot create a development certificate in %s", tls_dir);
        kms_log_info("tls: created a self-signed development certificate %s (configure "
                     "[tls] cert_file/key_file for production)",
                     cfg->tls_cert_file);
    }
}

/* A database without its master key would come up under a fresh key that opens nothing. */
static void kms_check_master_key_present(const struct kms_config *cfg, const char *db_path)
{
    if (cfg->pkcs11_seal_master_key || access(db_path, F_OK) != 0 ||
        access(cfg->master_key_file, F_OK) == 0)
        return;
    kms_fatal("keystore: the database %s exists but its master key %s does not; restore the "
              "master key from your backup (kmsd will not make a new one for an existing "
              "database)",
              db_path, cfg->master_key_file);
}

static void kms_check_master_key_matches(const struct kms_config *cfg)
{
    kms_err rc = kms_master_check(kms_store_thread(), true);

    if (rc == KMS_E_INVALID_PARAMETER)
        kms_fatal("keystore: the master key %s does not open this database (another data "
                  "directory's key, or a master-key rotation that did not finish: see "
                  "docs/operations.md, \"Rotating the master key\")",
                  cfg->pkcs11_seal_master_key ? cfg->pkcs11_master_key_label
                                              : cfg->master_key_file);
    if (rc != KMS_OK)
        kms_fatal("keystore: cannot check the master key against the database");
}

static const char *kms_url_host(const char *host, char *buf, size_t size)
{
    if (strchr(host, ':') != NULL) {
        snprintf(buf, size, "[%s]", host);
        return buf;
    }
    return host;
}

/* A second SIGTERM/SIGINT while requests drain: stop waiting. */
static bool kms_second_signal(void)
{
    struct timespec now = {0, 0};
    sigset_t stop;
    int sig;

    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sig = sigtimedwait(&stop, NULL, &now);
    if (sig > 0) {
        kms_log_warn("signal %d again: not waiting for the requests still under way", sig);
        return true;
    }
    return false;
}

static void kms_reload(const struct kms_config *cfg, bool tls)
{
    kms_notify("RELOADING=1");
    kms_log_info("SIGHUP: reloading the TLS certificate and reopening the audit log");
    if (tls)
        kms_tls_load(cfg->tls_cert_file, cfg->tls_key_file);
    kms_audit_reopen();
    kms_notify("READY=1");
}

int main(int argc, char **argv)
{
    static struct kms_config cfg;
    struct kms_server *server = NULL;
    struct kms_admin *admin = NULL;
    char db_path[PATH_MAX + 16], host[KMS_CONFIG_STR + 2];
    int port = 0, admin_port = 0, sig = 0, lock_fd;
    unsigned cut = 0;
    bool tls;

    kms_parse_flags(argc, argv, &cfg);
    /* Everything kmsd creates (database, keys, certificates) is for its own user only. */
    umask(077);
    /* Before any secret is read: no core dumps, no ptrace, optionally no swap. */
    if (kms_harden_process(&cfg) != KMS_OK || kms_harden_lock_memory(&cfg) != KMS_OK)
        kms_fatal("harden: cannot protect the process (the line above says why)");
    signal(SIGPIPE, SIG_IGN);
    /* Every thread started from here on inherits the mask; main waits for them with sigwait. */
    sigemptyset(&kms_signals);
    sigaddset(&kms_signals, SIGTERM);
    sigaddset(&kms_signals, SIGINT);
    sigaddset(&kms_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &kms_signals, NULL);

    lock_fd = kms_lock_data_dir(&cfg);
    tls = kms_config_uses_tls(&cfg);
    if (tls)
        kms_prepare_tls(&cfg);
    if (kms_harden_check_files(&cfg) != KMS_OK)
        kms_fatal("harden: refusing to start (the line above says why)");
    if (cfg.insecure_plain_http)
        kms_log_warn("UNSAFE: serving plain HTTP without TLS (insecure_plain_http); requests, "
                     "plaintexts and data keys cross the network unencrypted. Local debugging "
                     "only.");
    if (tls && kms_tls_load(cfg.tls_cert_file, cfg.tls_key_file) != KMS_OK)
        kms_fatal("tls: cannot use the certificate (the line above says why)");
    snprintf(db_path, sizeof(db_path), "%s/kmsd.db", cfg.data_dir);
    kms_check_master_key_present(&cfg, db_path);
    if (kms_aead_init() != KMS_OK)
        kms_fatal("crypto: cannot initialise the ciphers");
    if (kms_keystores_open(&cfg) != KMS_OK)
        kms_fatal("keystore: cannot open the key stores (the line above says why)");
    if (kms_store_init(db_path) != KMS_OK || kms_store_migrate() != KMS_OK)
        kms_fatal("store: cannot open the database %s", db_path);
    kms_check_master_key_matches(&cfg);
    if (kms_credentials_bootstrap(kms_store_thread(), kms_clock_now()) != KMS_OK)
        kms_fatal("auth: cannot set up the admin access key");
    kms_harden_scrub_env("KMSD_ADMIN_ACCESS_KEY_SECRET"); /* read once, on first start */
    if (kms_api_init(&cfg) != KMS_OK)
        kms_fatal("api: cannot initialise");
    if (kms_audit_start(&cfg) != KMS_OK)
        kms_fatal("audit: cannot start the audit log (the line above says why)");
    if (kms_seed_file != NULL && kms_seed_apply(&cfg, kms_seed_file) != KMS_OK)
        kms_fatal("seed: %s was not applied (the line above says why)", kms_seed_file);
    if (kms_maintenance_start(&cfg) != KMS_OK)
        kms_fatal("maintenance: cannot start");
    if (kms_server_start(&cfg, &server, &port) != KMS_OK)
        kms_fatal("http: cannot start the server on %s:%d", cfg.listen_host, cfg.listen_port);
    if (kms_admin_start(&cfg, &admin, &admin_port) != KMS_OK)
        kms_fatal("admin: cannot start the admin listener (the line above says why)");

    if (admin != NULL) {
        char admin_host[KMS_CONFIG_STR], admin_url_host[KMS_CONFIG_STR + 2];
        int ignored;

        kms_config_parse_hostport(cfg.admin_listen, admin_host, sizeof(admin_host), &ignored);
        printf("kmsd admin on %s://%s:%d (/healthz, /metrics)\n", cfg.admin_tls ? "https" : "http",
               kms_url_host(admin_host, admin_url_host, sizeof(admin_url_host)), admin_port);
    }
    printf("kmsd ready on %s://%s:%d\n", cfg.insecure_plain_http ? "http" : "https",
           kms_url_host(cfg.listen_host, host, sizeof(host)), port);
    fflush(stdout);
    kms_notify("READY=1");

    for (;;) {
        if (sigwait(&kms_signals, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            kms_reload(&cfg, tls);
            continue;
        }
        break;
    }
    kms_notify("STOPPING=1");
    kms_log_info("stopping on signal %d: no new connections; waiting up to %d s for requests "
                 "under way",
                 sig, cfg.shutdown_timeout);
    kms_server_shutdown(server, cfg.shutdown_timeout, kms_second_signal, &cut);
    if (cut > 0)
        kms_log_warn("stopped with %u request(s) still under way: their clients got no answer",
                     cut);
    kms_admin_stop(admin);
    kms_maintenance_stop();
    kms_audit_stop();
    kms_api_shutdown();
    kms_store_shutdown();
    kms_keystores_close();
    kms_tls_shutdown();
    kms_log_info("stopped");
    kms_datadir_unlock(lock_fd);
    return 0;
}
