/*
 * metrics.h - counters for operators, exposed in Prometheus text format on the admin listener
 * (src/http/admin.c): requests by Action and result Code, latency histograms per Action,
 * maintenance passes, TLS reloads; and gauges read when scraped (keys by state, secrets, replay
 * cache fill, audit queue). Counting costs a request a few plain stores into counters of its own
 * thread; only a scrape adds them up.
 */
#ifndef KMS_METRICS_H
#define KMS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/error.h"
#include "kms/util.h"

/* Counters for the actions names[0..count-1] (copied by reference: static strings). */
kms_err kms_metrics_init(const char *const *names, size_t count);
void kms_metrics_shutdown(void);

/* One answered request: action is an index into the names, or -1 when there was none. */
void kms_metrics_request(int action, kms_err rc, uint64_t latency_us);
/* One pass of timed work, and whether it went through without an error. */
void kms_metrics_maintenance(bool ok);
/* One TLS certificate reload (SIGHUP), and whether the new certificate was taken. */
void kms_metrics_tls_reload(bool ok);

/* Appends the text exposition (format 0.0.4) of every metric to out; gauges read the store. */
kms_err kms_metrics_render(struct kms_buf *out);

/* ---- health.c ---- */

/*
 * Whether the store and every configured keystore answer now: KMS_OK, or KMS_E_UNAVAILABLE with
 * what failed in why (size bytes).
 */
kms_err kms_health_check(char *why, size_t size);

#endif
