/*
 * config.c - configuration defaults, the INI reader and the one table of settings that both the
 * file and the command-line flags go through (so a flag and a file key validate the same way).
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kms/config.h"

enum kms_setting_type {
    KMS_SET_STR,    /* bounded string */
    KMS_SET_INT,    /* int within [min, max] */
    KMS_SET_SIZE,   /* size_t within [min, max] */
    KMS_SET_BOOL,   /* true/false/yes/no/on/off/1/0 */
    KMS_SET_LISTEN, /* HOST:PORT into listen_host/listen_port */
};

struct kms_setting {
    const char *section;
    const char *key;
    enum kms_setting_type type;
    size_t offset;
    size_t size; /* for strings: capacity */
    long long min;
    long long max;
};

#define KMS_STR(sec, k, field)                                                                     \
    {                                                                                              \
        sec, k, KMS_SET_STR, offsetof(struct kms_config, field),                                   \
            sizeof(((struct kms_config *)0)->field), 0, 0                                          \
    }
#define KMS_INT(sec, k, field, lo, hi)                                                             \
    {                                                                                              \
        sec, k, KMS_SET_INT, offsetof(struct kms_config, field), 0, lo, hi                         \
    }
#define KMS_SIZE(sec, k, field, lo, hi)                                                            \
    {                                                                                              \
        sec, k, KMS_SET_SIZE, offsetof(struct kms_config, field), 0, lo, hi                        \
    }
#define KMS_BOOL(sec, k, field)                                                                    \
    {                                                                                              \
        sec, k, KMS_SET_BOOL, offsetof(struct kms_config, field), 0, 0, 0                          \
    }

static const struct kms_setting kms_settings[] = {
    {"server", "listen", KMS_SET_LISTEN, 0, 0, 0, 0},
    KMS_STR("server", "data_dir", data_dir),
    KMS_INT("server", "threads", threads, 0, 256),
    KMS_INT("server", "max_connections", max_connections, 1, 1000000),
    KMS_INT("server", "max_connections_per_ip", max_connections_per_ip, 0, 1000000),
    KMS_INT("server", "connection_timeout", connection_timeout, 1, 86400),
    KMS_SIZE("server", "max_url_bytes", max_url_bytes, 8192, 16 * 1024 * 1024),
    KMS_SIZE("server", "max_body_bytes", max_body_bytes, 8192, 16 * 1024 * 1024),
    KMS_BOOL("server", "insecure_plain_http", insecure_plain_http),
    KMS_BOOL("server", "lock_memory", lock_memory),
    KMS_STR("server", "region", region),
    KMS_STR("server", "account_id", account_id),
    KMS_STR("server", "host_id", host_id),
    KMS_BOOL("server", "auto_open", auto_open),
    KMS_STR("server", "instance_id", instance_id),
    KMS_STR("tls", "cert_file", tls_cert_file),
    KMS_STR("tls", "key_file", tls_key_file),
    KMS_STR("tls", "priorities", tls_priorities),
    KMS_INT("auth", "timestamp_window", timestamp_window, 60, 86400),
    KMS_BOOL("auth", "require_nonce", require_nonce),
    KMS_SIZE("auth", "replay_cache_capacity", replay_cache_capacity, 1024, 1000000000),
    KMS_INT("auth", "max_access_keys_per_aap", max_access_keys_per_aap, 1, 10000),
    KMS_STR("keys", "master_key_file", master_key_file),
    KMS_INT("keys", "max_keys", max_keys, 1, 10000000),
    KMS_INT("keys", "max_aliases", max_aliases, 1, 10000000),
    KMS_INT("keys", "max_key_versions", max_key_versions, 1, 100000000),
    KMS_INT("keys", "max_tags_per_resource", max_tags_per_resource, 1, 20),
    KMS_INT("keys", "max_pending_window_days", max_pending_window_days, 7, 366),
    KMS_BOOL("keys", "symmetric_manual_rotation", symmetric_manual_rotation),
    KMS_BOOL("keys", "gm_requires_hsm", gm_requires_hsm),
    KMS_BOOL("keys", "rsa_pkcs1_encryption", rsa_pkcs1_encryption),
    KMS_INT("secrets", "max_secrets", max_secrets, 1, 10000000),
    KMS_INT("certificates", "max_certificates", max_certificates, 1, 10000000),
    KMS_INT("maintenance", "interval", maintenance_interval, 1, 86400),
    KMS_STR("pkcs11", "module", pkcs11_module),
    KMS_STR("pkcs11", "token_label", pkcs11_token_label),
    KMS_STR("pkcs11", "slot", pkcs11_slot),
    KMS_STR("pkcs11", "pin_file", pkcs11_pin_file),
    KMS_BOOL("pkcs11", "seal_master_key", pkcs11_seal_master_key),
    KMS_STR("pkcs11", "master_key_label", pkcs11_master_key_label),
    KMS_INT("server", "shutdown_timeout", shutdown_timeout, 1, 3600),
    KMS_BOOL("audit", "enabled", audit_enabled),
    KMS_STR("audit", "file", audit_file),
    KMS_SIZE("audit", "queue_bytes", audit_queue_bytes, 65536, 1024 * 1024 * 1024),
    KMS_INT("audit", "block_ms", audit_block_ms, 0, 60000),
    KMS_STR("admin", "listen", admin_listen),
    KMS_BOOL("admin", "tls", admin_tls),
};

void kms_config_defaults(struct kms_config *cfg)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "./kmsd-data");
    snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
    cfg->listen_port = 8443;
    cfg->threads = cores > 0 ? (int)cores : 2;
    cfg->max_connections = 4096;
    cfg->max_connections_per_ip = 256;
    cfg->connection_timeout = 60;
    cfg->max_url_bytes = 128 * 1024;
    cfg->max_body_bytes = 128 * 1024;
    snprintf(cfg->region, sizeof(cfg->region), "cn-hangzhou");
    snprintf(cfg->account_id, sizeof(cfg->account_id), "1000000000000000");
    cfg->auto_open = true;
    snprintf(cfg->tls_priorities, sizeof(cfg->tls_priorities), "%s",
             "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:"
             "+AES-128-GCM:+CHACHA20-POLY1305:%SERVER_PRECEDENCE");
    cfg->timestamp_window = 900;
    cfg->replay_cache_capacity = 9000000;
    cfg->max_access_keys_per_aap = 10;
    cfg->max_keys = 2000;
    cfg->max_aliases = 300;
    cfg->max_key_versions = 10000;
    cfg->max_tags_per_resource = 10;
    cfg->max_pending_window_days = 30;
    cfg->symmetric_manual_rotation = true;
    cfg->gm_requires_hsm = false;
    cfg->max_secrets = 2000;
    cfg->max_certificates = 1000;
    cfg->rsa_pkcs1_encryption = false;
    cfg->maintenance_interval = 60;
    snprintf(cfg->pkcs11_master_key_label, sizeof(cfg->pkcs11_master_key_label), "kmsd-master");
    cfg->shutdown_timeout = 30;
    cfg->audit_enabled = true;
    cfg->audit_queue_bytes = 8 * 1024 * 1024;
    cfg->audit_block_ms = 1000;
}

static bool kms_parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"};
    static const char *no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool kms_parse_number(const char *v, long long lo, long long hi, long long *out)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

bool kms_config_parse_hostport(const char *v, char *host, size_t size, int *port_out)
{
    const char *colon = strrchr(v, ':');
    long long port;
    size_t host_len;

    if (colon == NULL || colon == v)
        return false;
    if (!kms_parse_number(colon + 1, 0, 65535, &port))
        return false;
    host_len = (size_t)(colon - v);
    /* [::1]:8443 */
    if (v[0] == '[' && colon[-1] == ']') {
        v++;
        host_len -= 2;
    }
    if (host_len == 0 || host_len >= size)
        return false;
    memcpy(host, v, host_len);
    host[host_len] = '\0';
    *port_out = (int)port;
    return true;
}

static bool kms_parse_listen(struct kms_config *cfg, const char *v)
{
    return kms_config_parse_hostport(v, cfg->listen_host, sizeof(cfg->listen_host),
                                     &cfg->listen_port);
}

bool kms_config_set(struct kms_config *cfg, const char *section, const char *key, const char *value,
                    char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(kms_settings) / sizeof(kms_settings[0]); i++) {
        const struct kms_setting *s = &kms_settings[i];
        char *field = (char *)cfg + s->offset;
        long long n;
        bool b;

        if (strcmp(s->section, section) != 0 || strcmp(s->key, key) != 0)
            continue;
        switch (s->type) {
        case KMS_SET_LISTEN:
            if (kms_parse_listen(cfg, value))
                return true;
            snprintf(err, errlen, "%s.%s: expected HOST:PORT, got \"%s\"", section, key, value);
            return false;
        case KMS_SET_STR:
            if (strlen(value) < s->size) {
                snprintf(field, s->size, "%s", value);
                return true;
            }
            snprintf(err, errlen, "%s.%s: value longer than %zu bytes", section, key, s->size - 1);
            return false;
        case KMS_SET_INT:
            if (kms_parse_number(value, s->min, s->max, &n)) {
                *(int *)field = (int)n;
                return true;
            }
            break;
        case KMS_SET_SIZE:
            if (kms_parse_number(value, s->min, s->max, &n)) {
                *(size_t *)field = (size_t)n;
                return true;
            }
            break;
        case KMS_SET_BOOL:
            if (kms_parse_bool(value, &b)) {
                *(bool *)field = b;
                return true;
            }
            snprintf(err, errlen, "%s.%s: expected true or false, got \"%s\"", section, key, value);
            return false;
        }
        snprintf(err, errlen, "%s.%s: expected an integer from %lld to %lld, got \"%s\"", section,
                 key, s->min, s->max, value);
        return false;
    }
    snprintf(err, errlen, "unknown setting %s.%s", section, key);
    return false;
}

static char *kms_trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

bool kms_config_load_file(struct kms_config *cfg, const char *path, char *err, size_t errlen)
{
    char section[64] = "";
    char line[4096];
    char msg[512];
    int lineno = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s, *eq, *key, *value;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            fclose(f);
            return false;
        }
        s = kms_trim(line);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (close == NULL || close[1] != '\0' || (size_t)(close - s - 1) >= sizeof(section)) {
                snprintf(err, errlen, "%s:%d: malformed section header", path, lineno);
                fclose(f);
                return false;
            }
            *close = '\0';
            snprintf(section, sizeof(section), "%s", kms_trim(s + 1));
            continue;
        }
        eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%d: expected key = value", path, lineno);
            fclose(f);
            return false;
        }
        *eq = '\0';
        key = kms_trim(s);
        value = kms_trim(eq + 1);
        if (!kms_config_set(cfg, section, key, value, msg, sizeof(msg))) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
            fclose(f);
            return false;
        }
    }
    fclose(f);
    return true;
}

/* dir/name into out; false when it does not fit. */
static bool kms_join_path(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);

    return n > 0 && (size_t)n < size;
}

/* An unset path setting defaults to dir/name. */
static bool kms_config_default_path(char *field, size_t size, const char *dir, const char *name)
{
    return field[0] != '\0' || kms_join_path(field, size, dir, name);
}

/*
 * A path setting takes the systemd credential name when it exists, over the configuration file:
 * the same kmsd.conf then serves kmsd under systemd (which reads the credential copy) and kmsadm
 * run by root (which reads the configured file, e.g. /etc/kmsd/master.key).
 */
static void kms_config_credential(char *field, size_t size, const char *name)
{
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    char path[PATH_MAX];

    if (creds != NULL && kms_join_path(path, sizeof(path), creds, name) && access(path, F_OK) == 0)
        snprintf(field, size, "%s", path);
}

/*
 * The virtual instance's id (spec/actions.md B): the configured one, checked, or by default
 * "kst-kmsd" + 17 hex digits of SHA-256("kmsd-instance:" account ":" region), so it stays the
 * same across restarts and differs between deployments of different accounts or regions.
 */
static bool kms_config_instance_id(struct kms_config *cfg, char *err, size_t errlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char seed[2 * KMS_CONFIG_STR + 32];
    size_t n = strlen(cfg->instance_id);
    int len;

    if (n > 0) {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)cfg->instance_id[i];

            if (!isalnum(c) && c != '-' && c != '_') {
                snprintf(err, errlen,
                         "server.instance_id: only letters, digits, '-' and '_' are allowed");
                return false;
            }
        }
        if (n > 64) {
            snprintf(err, errlen, "server.instance_id: longer than 64 characters");
            return false;
        }
        return true;
    }
    len = snprintf(seed, sizeof(seed), "kmsd-instance:%s:%s", cfg->account_id, cfg->region);
    if (len < 0 || (size_t)len >= sizeof(seed) ||
        EVP_Digest(seed, (size_t)len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len < 9) {
        snprintf(err, errlen, "server.instance_id: cannot derive the default");
        return false;
    }
    memcpy(cfg->instance_id, "kst-kmsd", 8);
    for (size_t i = 0; i < 17; i++)
        cfg->instance_id[8 + i] = hex[(md[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
    cfg->instance_id[25] = '\0';
    return true;
}

bool kms_config_finish(struct kms_config *cfg, char *err, size_t errlen)
{
    if (!kms_config_instance_id(cfg, err, errlen))
        return false;
    /* A systemd credential master.key (or pkcs11.pin) wins over the file and the default. */
    kms_config_credential(cfg->master_key_file, sizeof(cfg->master_key_file), "master.key");
    kms_config_credential(cfg->pkcs11_pin_file, sizeof(cfg->pkcs11_pin_file), "pkcs11.pin");
    if (!kms_config_default_path(cfg->tls_cert_file, sizeof(cfg->tls_cert_file), cfg->data_dir,
                                 "tls/cert.pem") ||
        !kms_config_default_path(cfg->tls_key_file, sizeof(cfg->tls_key_file), cfg->data_dir,
                                 "tls/key.pem") ||
        !kms_config_default_path(cfg->master_key_file, sizeof(cfg->master_key_file), cfg->data_dir,
                                 "master.key") ||
        !kms_config_default_path(cfg->audit_file, sizeof(cfg->audit_file), cfg->data_dir,
                                 "audit.log")) {
        snprintf(err, errlen, "server.data_dir: path too long");
        return false;
    }
    if (cfg->host_id[0] == '\0' && gethostname(cfg->host_id, sizeof(cfg->host_id)) != 0)
        snprintf(cfg->host_id, sizeof(cfg->host_id), "kmsd");
    cfg->host_id[sizeof(cfg->host_id) - 1] = '\0';
    if (cfg->admin_listen[0] != '\0') {
        char host[KMS_CONFIG_STR];
        int port;

        if (!kms_config_parse_hostport(cfg->admin_listen, host, sizeof(host), &port)) {
            snprintf(err, errlen, "admin.listen: expected HOST:PORT, got \"%s\"",
                     cfg->admin_listen);
            return false;
        }
    }
    return true;
}

bool kms_config_uses_tls(const struct kms_config *cfg)
{
    return !cfg->insecure_plain_http || (cfg->admin_listen[0] != '\0' && cfg->admin_tls);
}
