/*
 * args.c - reading and validating action parameters (spec/protocol.md §2.1), and the small
 * helpers handlers use to fill their response.
 */
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kms/api.h"
#include "kms/crypto.h"

kms_err kms_fail(struct kms_call *call, kms_err err, const char *detail)
{
    kms_buf_reset(&call->detail);
    if (detail != NULL)
        kms_buf_append_str(&call->detail, detail);
    return err;
}

const char *kms_arg(const struct kms_call *call, const char *name)
{
    const struct kms_param *p = kms_params_find(&call->params, name);

    if (p == NULL || p->value_len == 0)
        return NULL;
    return p->value;
}

kms_err kms_arg_required(struct kms_call *call, const char *name, const char **out)
{
    *out = kms_arg(call, name);
    if (*out == NULL)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, name);
    return KMS_OK;
}

kms_err kms_arg_int(struct kms_call *call, const char *name, int64_t lo, int64_t hi, int64_t def,
                    int64_t *out)
{
    const char *v = kms_arg(call, name);
    char *end;
    long long n;

    if (v == NULL) {
        *out = def;
        return KMS_OK;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    /* Digits with an optional leading '-', nothing else (no spaces, no '+', no hex). */
    if (errno != 0 || end == v || *end != '\0' || v[0] == '+' || v[0] == ' ' || n < lo || n > hi)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, name);
    *out = n;
    return KMS_OK;
}

kms_err kms_arg_bool(struct kms_call *call, const char *name, bool def, bool *out)
{
    const char *v = kms_arg(call, name);

    if (v == NULL)
        *out = def;
    else if (strcasecmp(v, "true") == 0)
        *out = true;
    else if (strcasecmp(v, "false") == 0)
        *out = false;
    else
        return kms_fail(call, KMS_E_INVALID_PARAMETER, name);
    return KMS_OK;
}

kms_err kms_arg_page(struct kms_call *call, int64_t def_size, int64_t *page, int64_t *size)
{
    kms_err rc = kms_arg_int(call, "PageNumber", 1, INT32_MAX, 1, page);

    if (rc != KMS_OK)
        return rc;
    return kms_arg_int(call, "PageSize", 1, 100, def_size, size);
}

kms_err kms_arg_rotation_interval(struct kms_call *call, const char *name, int64_t *out)
{
    const char *v = kms_arg(call, name);
    int64_t n;

    if (v == NULL)
        return kms_fail(call, KMS_E_MISSING_PARAMETER, name);
    if (!kms_duration_parse(v, &n) || n < KMS_ROTATION_INTERVAL_MIN ||
        n > KMS_ROTATION_INTERVAL_MAX)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, name);
    *out = n;
    return KMS_OK;
}

kms_err kms_arg_base64(struct kms_call *call, const char *name, bool required, struct kms_buf *out,
                       bool *present)
{
    const struct kms_param *p = kms_params_find(&call->params, name);
    size_t n = 0;
    kms_err rc;

    if (present)
        *present = false;
    if (p == NULL || p->value_len == 0) {
        if (required)
            return kms_fail(call, KMS_E_MISSING_PARAMETER, name);
        return KMS_OK;
    }
    rc = kms_buf_reserve(out, KMS_B64_DECODED_MAX(p->value_len));
    if (rc != KMS_OK)
        return rc;
    if (!kms_b64_decode(p->value, p->value_len, (uint8_t *)out->data + out->len, &n))
        return kms_fail(call, KMS_E_INVALID_PARAMETER, name);
    out->len += n;
    out->data[out->len] = '\0';
    if (present)
        *present = true;
    return KMS_OK;
}

kms_err kms_check_length(struct kms_call *call, const char *name, const char *s, size_t lo,
                         size_t hi)
{
    size_t n = s ? kms_utf8_length(s, strlen(s)) : 0;

    if (n < lo || n > hi)
        return kms_fail(call, KMS_E_INVALID_PARAMETER, name);
    return KMS_OK;
}

kms_err kms_arg_dry_run(struct kms_call *call, bool *dry)
{
    return kms_arg_bool(call, "DryRun", false, dry);
}

void kms_out_page(struct kms_call *call, int64_t page, int64_t size, int64_t total)
{
    cJSON_AddNumberToObject(call->out, "TotalCount", (double)total);
    cJSON_AddNumberToObject(call->out, "PageNumber", (double)page);
    cJSON_AddNumberToObject(call->out, "PageSize", (double)size);
}

void kms_arn(const struct kms_call *call, const char *type, const char *name, char *out,
             size_t size)
{
    snprintf(out, size, "acs:kms:%s:%s:%s/%s", call->cfg->region, call->cfg->account_id, type,
             name);
}

kms_err kms_out_str(cJSON *obj, const char *name, const char *value)
{
    return cJSON_AddStringToObject(obj, name, value ? value : "") ? KMS_OK : KMS_E_INTERNAL;
}

kms_err kms_out_time(cJSON *obj, const char *name, int64_t t)
{
    char when[KMS_TIME_LEN] = "";

    if (t != 0)
        kms_time_format((time_t)t, when);
    return kms_out_str(obj, name, when);
}

cJSON *kms_out_list(cJSON *obj, const char *outer, const char *inner)
{
    cJSON *wrap = cJSON_AddObjectToObject(obj, outer);

    return wrap ? cJSON_AddArrayToObject(wrap, inner) : NULL;
}

cJSON *kms_out_item(cJSON *array)
{
    cJSON *item = cJSON_CreateObject();

    if (item == NULL || array == NULL || !cJSON_AddItemToArray(array, item)) {
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}
