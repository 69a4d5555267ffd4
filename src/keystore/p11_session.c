/*
 * p11_session.c - the pool of PKCS#11 sessions and what happens when the token goes away.
 *
 * One operation holds one session (a session runs one operation at a time), taken from an idle
 * list and given back after, so sessions are opened only when concurrency grows. All sessions
 * share the login of the anchor session, which stays open for the life of the process.
 *
 * When a call says the session or the token is gone (CKR_SESSION_HANDLE_INVALID,
 * CKR_SESSION_CLOSED, CKR_TOKEN_NOT_PRESENT, CKR_DEVICE_REMOVED, ...), the request gets 503
 * ServiceUnavailableTemporary, one error line is logged, and the token is marked broken. The
 * next request reopens: it finds the token again (by label, so a re-inserted token in another
 * slot is found), opens a new anchor and logs in again, and bumps the generation so every older
 * session and cached object handle is dropped. While the token stays away, reopening is tried
 * at most once a second and every request gets 503; nothing crashes and nothing blocks.
 */
#include <stdio.h>
#include <stdlib.h>

#include "kms/log.h"
#include "p11.h"

/* Idle sessions kept for reuse; more are closed when given back. */
#define KMS_P11_POOL_MAX 64

/* Called with p_lock held. */
static void kms_p11_session_free(struct kms_p11 *p, struct kms_p11_session *s)
{
    p->p_fn->C_CloseSession(s->s_handle);
    free(s);
    p->p_open_count--;
}

/* Called with p_lock held. */
static void kms_p11_drop_idle(struct kms_p11 *p)
{
    while (p->p_idle != NULL) {
        struct kms_p11_session *s = p->p_idle;

        p->p_idle = s->s_next;
        p->p_idle_count--;
        kms_p11_session_free(p, s);
    }
}

/* Called with p_lock held: brings the token back, or says it is still away. */
static kms_err kms_p11_reopen(struct kms_p11 *p)
{
    time_t now = time(NULL);
    CK_SESSION_HANDLE anchor;
    CK_SLOT_ID slot;
    CK_RV rv;

    if (p->p_last_attempt != 0 && now - p->p_last_attempt < 1)
        return KMS_E_UNAVAILABLE;
    p->p_last_attempt = now;
    kms_p11_drop_idle(p);
    if (p->p_have_anchor) {
        p->p_fn->C_CloseSession(p->p_anchor);
        p->p_have_anchor = false;
    }
    if (!kms_p11_find_slot(p, &slot, &rv))
        return KMS_E_UNAVAILABLE;
    rv = p->p_fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &anchor);
    if (rv != CKR_OK)
        return KMS_E_UNAVAILABLE;
    rv = kms_p11_login(p, anchor);
    if (rv != CKR_OK) {
        /* A token that came back with another PIN needs an operator: say so every time. */
        kms_log_error("pkcs11: the token '%s' is back but logging in failed: %s", p->p_label,
                      kms_p11_rv_name(rv));
        p->p_fn->C_CloseSession(anchor);
        return KMS_E_UNAVAILABLE;
    }
    p->p_slot = slot;
    p->p_anchor = anchor;
    p->p_have_anchor = true;
    p->p_broken = false;
    atomic_fetch_add(&p->p_gen, 1);
    kms_log_info("pkcs11: the token '%s' is back (slot %lu): sessions reopened", p->p_label,
                 (unsigned long)slot);
    return KMS_OK;
}

kms_err kms_p11_session_get(struct kms_p11 *p, struct kms_p11_session **out)
{
    struct kms_p11_session *s = NULL;
    uint64_t gen;
    CK_SLOT_ID slot;
    CK_RV rv;

    pthread_mutex_lock(&p->p_lock);
    if (p->p_broken && kms_p11_reopen(p) != KMS_OK) {
        pthread_mutex_unlock(&p->p_lock);
        return KMS_E_UNAVAILABLE;
    }
    gen = atomic_load(&p->p_gen);
    while (p->p_idle != NULL && s == NULL) {
        s = p->p_idle;
        p->p_idle = s->s_next;
        p->p_idle_count--;
        if (s->s_gen != gen) {
            kms_p11_session_free(p, s);
            s = NULL;
        }
    }
    slot = p->p_slot;
    if (s == NULL)
        p->p_open_count++;
    pthread_mutex_unlock(&p->p_lock);
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        rv = s ? p->p_fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                        &s->s_handle)
               : CKR_HOST_MEMORY;
        if (rv != CKR_OK) {
            struct kms_p11_session probe = {0, gen, false, NULL};

            free(s);
            pthread_mutex_lock(&p->p_lock);
            p->p_open_count--;
            pthread_mutex_unlock(&p->p_lock);
            return kms_p11_fail(p, &probe, rv, "C_OpenSession");
        }
        s->s_gen = gen;
    }
    s->s_next = NULL;
    *out = s;
    return KMS_OK;
}

void kms_p11_session_put(struct kms_p11 *p, struct kms_p11_session *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&p->p_lock);
    if (s->s_lost || s->s_gen != atomic_load(&p->p_gen) || p->p_idle_count >= KMS_P11_POOL_MAX) {
        kms_p11_session_free(p, s);
    } else {
        s->s_next = p->p_idle;
        p->p_idle = s;
        p->p_idle_count++;
    }
    pthread_mutex_unlock(&p->p_lock);
}

kms_err kms_p11_fail(struct kms_p11 *p, struct kms_p11_session *s, CK_RV rv, const char *what)
{
    bool first = false;

    if (kms_p11_rv_lost(rv)) {
        pthread_mutex_lock(&p->p_lock);
        /* Only the first failure of a generation marks the token; later ones are its echo. */
        if (!p->p_broken && (s == NULL || s->s_gen == atomic_load(&p->p_gen))) {
            p->p_broken = true;
            p->p_last_attempt = 0;
            first = true;
        }
        pthread_mutex_unlock(&p->p_lock);
        if (s != NULL)
            s->s_lost = true;
        if (first)
            kms_log_error("pkcs11: the token '%s' is unavailable (%s from %s): answering 503 "
                          "until its sessions can be reopened",
                          p->p_label, kms_p11_rv_name(rv), what);
        return KMS_E_UNAVAILABLE;
    }
    if (rv == CKR_HOST_MEMORY || rv == CKR_DEVICE_MEMORY || rv == CKR_SESSION_COUNT) {
        kms_log_warn("pkcs11: %s: %s (the token is out of resources)", what, kms_p11_rv_name(rv));
        return KMS_E_UNAVAILABLE;
    }
    kms_log_error("pkcs11: %s failed: %s", what, kms_p11_rv_name(rv));
    return KMS_E_INTERNAL;
}

void kms_p11_sessions_close(struct kms_p11 *p)
{
    pthread_mutex_lock(&p->p_lock);
    kms_p11_drop_idle(p);
    if (p->p_have_anchor) {
        p->p_fn->C_CloseSession(p->p_anchor);
        p->p_have_anchor = false;
    }
    pthread_mutex_unlock(&p->p_lock);
}
