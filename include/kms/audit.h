/*
 * audit.h - the audit log: one JSON line per API request, written by a background thread
 * through a bounded in-memory queue (DESIGN.md "Audit"), reopened on SIGHUP for log rotation.
 *
 * A record carries who, from where, what and how it ended; never a parameter value, plaintext,
 * secret, key material, signature or StringToSign (docs/operations.md lists the fields).
 */
#ifndef KMS_AUDIT_H
#define KMS_AUDIT_H

#include <stdint.h>
#include <time.h>

#include "kms/error.h"

struct kms_config;

/* One request, as dispatch saw it. Strings may be NULL (written as ""). */
struct kms_audit_record {
    struct timespec ar_time; /* when the request arrived (CLOCK_REALTIME) */
    const char *ar_request_id;
    const char *ar_access_key_id; /* the signer's id, or the id claimed by a rejected request */
    const char *ar_principal;     /* "admin", the access point's name, or "" (not authenticated) */
    const char *ar_source_ip;
    const char *ar_action;
    const char *ar_resource; /* e.g. "key/<KeyId>", "secret/<name>" */
    const char *ar_code;     /* "Success" or the error Code */
    int ar_http_status;
    uint64_t ar_latency_us;
};

struct kms_audit_stats {
    uint64_t as_written;      /* records handed to the file */
    uint64_t as_dropped;      /* records lost: queue full past block_ms, or a failed write */
    uint64_t as_queued_bytes; /* bytes waiting for the writer now */
};

/* Opens the file and starts the writer thread (nothing when [audit] enabled = false). */
kms_err kms_audit_start(const struct kms_config *cfg);
/* Queues one record; never fails the request (a lost record is counted and warned about). */
void kms_audit_request(const struct kms_audit_record *r);
/* Asks the writer to reopen the file (SIGHUP): rename-and-signal log rotation. */
void kms_audit_reopen(void);
/* Writes everything queued, syncs and closes the file, stops the thread. */
void kms_audit_stop(void);
void kms_audit_stats(struct kms_audit_stats *out);

#endif
