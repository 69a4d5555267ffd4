/*
 * p11_object.c - token objects: finding a key by CKA_ID (the key version id) or CKA_LABEL and
 * caching its handle, destroying a version's objects, reading attributes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/log.h"
#include "p11.h"

void kms_p11_handle_init(struct kms_p11_handle *h, CK_OBJECT_CLASS cls, long key_type,
                         CK_ATTRIBUTE_TYPE attr, const void *value, size_t len)
{
    memset(h, 0, sizeof(*h));
    h->h_class = cls;
    h->h_key_type = key_type;
    h->h_attr = attr;
    if (len > sizeof(h->h_value))
        len = sizeof(h->h_value); /* callers check; a cut value simply finds nothing */
    memcpy(h->h_value, value, len);
    h->h_value_len = len;
    atomic_store(&h->h_obj, CK_INVALID_HANDLE);
    atomic_store(&h->h_gen, 0);
}

kms_err kms_p11_handle_get(struct kms_p11 *p, struct kms_p11_session *s, struct kms_p11_handle *h,
                           CK_OBJECT_HANDLE *obj)
{
    uint64_t gen = atomic_load(&p->p_gen);
    CK_KEY_TYPE key_type = (CK_KEY_TYPE)h->h_key_type;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &h->h_class, sizeof(h->h_class)},
        {h->h_attr, h->h_value, h->h_value_len},
        {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
    };
    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    CK_RV rv;

    if (atomic_load(&h->h_gen) == gen) {
        *obj = atomic_load(&h->h_obj);
        return KMS_OK;
    }
    rv = p->p_fn->C_FindObjectsInit(s->s_handle, tmpl, h->h_key_type >= 0 ? 3 : 2);
    if (rv != CKR_OK)
        return kms_p11_fail(p, s, rv, "C_FindObjectsInit");
    rv = p->p_fn->C_FindObjects(s->s_handle, found, 2, &count);
    p->p_fn->C_FindObjectsFinal(s->s_handle);
    if (rv != CKR_OK)
        return kms_p11_fail(p, s, rv, "C_FindObjects");
    if (count == 0)
        return KMS_E_KEY_NOT_FOUND;
    if (count > 1) {
        kms_log_error("pkcs11: the token '%s' holds several keys with the %s \"%.*s\"", p->p_label,
                      h->h_attr == CKA_LABEL ? "label" : "id", (int)h->h_value_len,
                      (const char *)h->h_value);
        return KMS_E_INTERNAL;
    }
    /* Handle first, then the generation that vouches for it (readers check them in reverse). */
    atomic_store(&h->h_obj, found[0]);
    atomic_store(&h->h_gen, gen);
    *obj = found[0];
    return KMS_OK;
}

void kms_p11_handle_forget(struct kms_p11_handle *h)
{
    atomic_store(&h->h_gen, 0);
}

kms_err kms_p11_destroy_by_id(struct kms_p11 *p, struct kms_p11_session *s, const void *id,
                              size_t id_len, size_t *count)
{
    CK_ATTRIBUTE tmpl[] = {{CKA_ID, (void *)id, id_len}};
    CK_OBJECT_HANDLE found[16];
    CK_ULONG n = 0;
    CK_RV rv;

    *count = 0;
    /* Objects are destroyed after each search ends: no token likes changes during a search. */
    for (;;) {
        rv = p->p_fn->C_FindObjectsInit(s->s_handle, tmpl, 1);
        if (rv != CKR_OK)
            return kms_p11_fail(p, s, rv, "C_FindObjectsInit");
        rv = p->p_fn->C_FindObjects(s->s_handle, found, KMS_ARRAY_LEN(found), &n);
        p->p_fn->C_FindObjectsFinal(s->s_handle);
        if (rv != CKR_OK)
            return kms_p11_fail(p, s, rv, "C_FindObjects");
        if (n == 0)
            return KMS_OK;
        for (CK_ULONG i = 0; i < n; i++) {
            rv = p->p_fn->C_DestroyObject(s->s_handle, found[i]);
            if (rv != CKR_OK)
                return kms_p11_fail(p, s, rv, "C_DestroyObject");
            (*count)++;
        }
    }
}

CK_RV kms_p11_get_attr(struct kms_p11 *p, struct kms_p11_session *s, CK_OBJECT_HANDLE obj,
                       CK_ATTRIBUTE_TYPE type, struct kms_buf *out)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_RV rv = p->p_fn->C_GetAttributeValue(s->s_handle, obj, &a, 1);

    if (rv != CKR_OK)
        return rv;
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 65536)
        return CKR_ATTRIBUTE_SENSITIVE;
    if (kms_buf_reserve(out, a.ulValueLen) != KMS_OK)
        return CKR_HOST_MEMORY;
    a.pValue = out->data + out->len;
    rv = p->p_fn->C_GetAttributeValue(s->s_handle, obj, &a, 1);
    if (rv != CKR_OK)
        return rv;
    out->len += a.ulValueLen;
    out->data[out->len] = '\0';
    return CKR_OK;
}
