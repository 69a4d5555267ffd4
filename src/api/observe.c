/*
 * observe.c - what every API request leaves behind once answered: one audit record (src/audit/)
 * and its counts (src/metrics/). Called once per request from kms_api_serve, whatever happened,
 * so a request rejected before authentication is recorded too (with the AccessKeyId it claimed).
 *
 * Only names, ids, the peer address, the result and the time go into a record: never a parameter
 * value, so no plaintext, secret, key material, signature or StringToSign can reach the log.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "kms/audit.h"
#include "kms/metrics.h"

void kms_api_observe_begin(struct kms_api_timing *t)
{
    clock_gettime(CLOCK_REALTIME, &t->at_real);
    clock_gettime(CLOCK_MONOTONIC, &t->at_mono);
}

/* The AccessKeyId a request claims: the V1 parameter, or Credential= of a V3 Authorization. */
static void kms_api_claimed_id(const struct kms_call *call, char out[KMS_ID_MAX])
{
    const char *authz = kms_request_header(call->req, "authorization");
    const char *id = kms_arg(call, "AccessKeyId");
    size_t n = 0;

    out[0] = '\0';
    if (authz != NULL && strncmp(authz, "ACS3-", 5) == 0) {
        const char *p = strstr(authz, "Credential=");

        if (p == NULL)
            return;
        p += strlen("Credential=");
        while (p[n] != '\0' && p[n] != ',' && p[n] != ' ' && n < KMS_ID_MAX - 1)
            n++;
        memcpy(out, p, n);
        out[n] = '\0';
        return;
    }
    if (id != NULL)
        snprintf(out, KMS_ID_MAX, "%s", id);
}

/* The Action a request named, known or not (clipped by the audit writer). */
static const char *kms_api_named_action(const struct kms_call *call)
{
    const char *action;

    if (call->action != NULL)
        return call->action;
    action = kms_request_header(call->req, "x-acs-action");
    return action != NULL ? action : kms_arg(call, "Action");
}

void kms_api_observe_end(const struct kms_call *call, kms_err rc, const struct kms_response *resp,
                         const struct kms_api_timing *t)
{
    const struct kms_err_info *info = kms_err_info(rc);
    struct kms_audit_record r;
    struct timespec now;
    char claimed[KMS_ID_MAX];
    uint64_t latency_us;

    /* The error renderer's last resort answers 500 whatever rc said. */
    if (rc != KMS_OK && info->http_status != resp->status)
        rc = KMS_E_INTERNAL;
    clock_gettime(CLOCK_MONOTONIC, &now);
    latency_us = (uint64_t)(now.tv_sec - t->at_mono.tv_sec) * 1000000u +
                 (uint64_t)((now.tv_nsec - t->at_mono.tv_nsec) / 1000);
    kms_metrics_request(kms_action_slot(call->action), rc, latency_us);

    memset(&r, 0, sizeof(r));
    r.ar_time = t->at_real;
    r.ar_request_id = call->request_id;
    if (call->authenticated) {
        r.ar_access_key_id = call->principal.access_key_id;
        r.ar_principal = call->principal.admin ? "admin" : call->principal.aap_name;
    } else {
        kms_api_claimed_id(call, claimed);
        r.ar_access_key_id = claimed;
        r.ar_principal = "";
    }
    r.ar_source_ip = call->req->peer_ip;
    r.ar_action = kms_api_named_action(call);
    r.ar_resource = call->resource;
    r.ar_code = rc == KMS_OK ? "Success" : kms_err_info(rc)->code;
    r.ar_http_status = resp->status;
    r.ar_latency_us = latency_us;
    kms_audit_request(&r);
}
