/*
 * main.c - the kmsd daemon: flags and configuration, first-start setup of the data directory,
 * start-up in dependency order, signals, and a clean stop.
 *
 *   kmsd --data-dir DIR --listen HOST:PORT [--config FILE]
 *
 * Flags win over the configuration file. SIGTERM/SIGINT stop the server (exit status 0).
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
#include "kms/auth.h"
#include "kms/clock.h"
#include "kms/config.h"
#include "kms/crypto.h"
#include "kms/harden.h"
#include "kms/http.h"
#include "kms/log.h"
#include "kms/store.h"

static void kms_usage(FILE *f)
{
    fprintf(f, "usage: kmsd [--config FILE] [--data-dir DIR] [--listen HOST:PORT] [--threads N]\n"
               "            [--region ID] [--insecure-plain-http] [--quiet] [--version]\n"
               "\n"
               "A self-hosted KMS speaking Alibaba Cloud KMS's API (2016-01-20).\n"
               "Flags override the configuration file (see conf/kmsd.conf for every setting).\n");
}

/* Applies --config first, then every other flag over it. */
static void kms_parse_flags(int argc, char **argv, struct kms_config *cfg)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"data-dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'}, {"threads", required_argument, NULL, 't'},
        {"region", required_argument, NULL, 'r'}, {"insecure-plain-http", no_argument, NULL, 'P'},
        {"quiet", no_argument, NULL, 'q'},        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
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

/* Creates the data directory and, when the default TLS files are missing, a dev certificate. */
static void kms_prepare_data_dir(const struct kms_config *cfg)
{
    char tls_dir[PATH_MAX + 8];
    char default_cert[PATH_MAX + 32];

    kms_make_dir(cfg->data_dir);
    if (cfg->insecure_plain_http)
        return;
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

static const char *kms_url_host(const char *host, char *buf, size_t size)
{
    if (strchr(host, ':') != NULL) {
        snprintf(buf, size, "[%s]", host);
        return buf;
    }
    return host;
}

int main(int argc, char **argv)
{
    static struct kms_config cfg;
    struct kms_server *server = NULL;
    char db_path[PATH_MAX + 16], host[KMS_CONFIG_STR + 2];
    sigset_t signals;
    int port = 0, sig = 0;

    kms_parse_flags(argc, argv, &cfg);
    /* Everything kmsd creates (database, keys, certificates) is for its own user only. */
    umask(077);
    /* Before any secret is read: no core dumps, no ptrace, optionally no swap. */
    if (kms_harden_process(&cfg) != KMS_OK || kms_harden_lock_memory(&cfg) != KMS_OK)
        kms_fatal("harden: cannot protect the process (the line above says why)");
    signal(SIGPIPE, SIG_IGN);
    /* Every thread started from here on inherits the mask; main waits for them with sigwait. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);

    kms_prepare_data_dir(&cfg);
    if (kms_harden_check_files(&cfg) != KMS_OK)
        kms_fatal("harden: refusing to start (the line above says why)");
    if (cfg.insecure_plain_http)
        kms_log_warn("UNSAFE: serving plain HTTP without TLS (insecure_plain_http); requests, "
                     "plaintexts and data keys cross the network unencrypted. Local debugging "
                     "only.");
    if (kms_aead_init() != KMS_OK)
        kms_fatal("crypto: cannot initialise the ciphers");
    if (kms_keystores_open(&cfg) != KMS_OK)
        kms_fatal("keystore: cannot open the key stores (the line above says why)");
    snprintf(db_path, sizeof(db_path), "%s/kmsd.db", cfg.data_dir);
    if (kms_store_init(db_path) != KMS_OK || kms_store_migrate() != KMS_OK)
        kms_fatal("store: cannot open the database %s", db_path);
    if (kms_credentials_bootstrap(kms_store_thread(), kms_clock_now()) != KMS_OK)
        kms_fatal("auth: cannot set up the admin access key");
    kms_harden_scrub_env("KMSD_ADMIN_ACCESS_KEY_SECRET"); /* read once, on first start */
    if (kms_api_init(&cfg) != KMS_OK)
        kms_fatal("api: cannot initialise");
    if (kms_maintenance_start(&cfg) != KMS_OK)
        kms_fatal("maintenance: cannot start");
    if (kms_server_start(&cfg, &server, &port) != KMS_OK)
        kms_fatal("http: cannot start the server on %s:%d", cfg.listen_host, cfg.listen_port);

    printf("kmsd ready on %s://%s:%d\n", cfg.insecure_plain_http ? "http" : "https",
           kms_url_host(cfg.listen_host, host, sizeof(host)), port);
    fflush(stdout);

    for (;;) {
        if (sigwait(&signals, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            kms_log_info("SIGHUP: nothing to reload yet");
            continue;
        }
        break;
    }
    kms_log_info("stopping on signal %d", sig);
    kms_server_stop(server);
    kms_maintenance_stop();
    kms_api_shutdown();
    kms_store_shutdown();
    kms_keystores_close();
    kms_log_info("stopped");
    return 0;
}
