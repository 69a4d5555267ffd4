/*
 * config.h - kmsd's configuration: defaults, the INI file (conf/kmsd.conf documents every key)
 * and command-line flags, which win over the file.
 */
#ifndef KMS_CONFIG_H
#define KMS_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define KMS_CONFIG_STR 256

struct kms_config {
    /* [server] */
    char data_dir[PATH_MAX];
    char listen_host[KMS_CONFIG_STR];
    int listen_port;
    int threads; /* 0 = one per core */
    int max_connections;
    int max_connections_per_ip; /* 0 = unlimited */
    int connection_timeout;     /* seconds of inactivity before a connection is closed */
    size_t max_url_bytes;       /* longest request line accepted (the SDKs put everything there) */
    size_t max_body_bytes;      /* longest request body accepted */
    bool insecure_plain_http;   /* UNSAFE: serve plain HTTP, for local debugging only */
    bool lock_memory;           /* mlockall at start: no page of kmsd is ever swapped out */
    char region[KMS_CONFIG_STR];
    char account_id[KMS_CONFIG_STR];
    char host_id[KMS_CONFIG_STR]; /* HostId in error bodies */
    bool auto_open;               /* the account counts as opened (OpenKmsService) from the start */
    char instance_id[KMS_CONFIG_STR]; /* the one virtual KMS instance (spec/actions.md B) */
    /* [tls] */
    char tls_cert_file[PATH_MAX];
    char tls_key_file[PATH_MAX];
    char tls_priorities[KMS_CONFIG_STR]; /* GnuTLS priority string */
    /* [auth] */
    int timestamp_window; /* seconds either side of the server clock */
    bool require_nonce;
    size_t replay_cache_capacity; /* nonces remembered at once; full -> 503 */
    int max_access_keys_per_aap;  /* CreateAccessKey limit per application access point */
    /* [keys] */
    char master_key_file[PATH_MAX];
    int max_keys;
    int max_aliases;
    int max_key_versions;
    int max_tags_per_resource;
    int max_pending_window_days;
    bool symmetric_manual_rotation; /* CreateKeyVersion on symmetric keys */
    bool gm_requires_hsm;           /* SM2/SM4 only with ProtectionLevel=HSM */
    bool rsa_pkcs1_encryption;      /* RSAES_PKCS1_V1_5 for AsymmetricEncrypt/Decrypt */
    /* [secrets] */
    int max_secrets;
    /* [certificates] */
    int max_certificates;
    /* [maintenance] */
    int maintenance_interval; /* seconds between timed-work passes */
    /* [pkcs11] (docs/hsm.md); the HSM keystore is enabled only when pkcs11_module is set */
    char pkcs11_module[PATH_MAX];            /* the module's shared library, dlopen'd at start */
    char pkcs11_token_label[KMS_CONFIG_STR]; /* the token, by label ... */
    char pkcs11_slot[32];                    /* ... and/or by slot id (decimal) */
    char pkcs11_pin_file[PATH_MAX]; /* user PIN; default $CREDENTIALS_DIRECTORY/pkcs11.pin */
    bool pkcs11_seal_master_key;    /* the software master key lives in the token */
    char pkcs11_master_key_label[KMS_CONFIG_STR]; /* its label there */
    /* [server] continued: stopping */
    int shutdown_timeout; /* seconds SIGTERM waits for in-flight requests before cutting them */
    /* [audit] (src/audit/audit.c) */
    bool audit_enabled;
    char audit_file[PATH_MAX]; /* default <data_dir>/audit.log */
    size_t audit_queue_bytes;  /* records waiting for the writer thread, at most */
    int audit_block_ms;        /* how long a request waits for room before its record is dropped */
    /* [admin] (src/http/admin.c): /healthz and /metrics; off while admin_listen is "" */
    char admin_listen[KMS_CONFIG_STR]; /* HOST:PORT */
    bool admin_tls;                    /* serve it over TLS with the API's certificate */
    /* where the file came from, for messages */
    char config_file[PATH_MAX];
};

/* Fills cfg with the built-in defaults. */
void kms_config_defaults(struct kms_config *cfg);

/*
 * Reads an INI file over cfg. Unknown sections or keys, bad values and unreadable files are
 * errors: a message naming the file, line and key is written to err (size errlen), and false
 * is returned.
 */
bool kms_config_load_file(struct kms_config *cfg, const char *path, char *err, size_t errlen);

/* Sets one "section.key" to value (flags use this too); false with a message in err if invalid. */
bool kms_config_set(struct kms_config *cfg, const char *section, const char *key, const char *value,
                    char *err, size_t errlen);

/*
 * Splits "HOST:PORT" or "[v6]:PORT" (port 0-65535) into host (size bytes) and *port; false when
 * malformed.
 */
bool kms_config_parse_hostport(const char *value, char *host, size_t size, int *port);

/* Fills paths that default to places inside data_dir; call after file and flags. */
bool kms_config_finish(struct kms_config *cfg, char *err, size_t errlen);

/* Whether a listener serves TLS (the API's, or the admin listener's): the TLS files are needed. */
bool kms_config_uses_tls(const struct kms_config *cfg);

#endif
