/*
 * test_hooks.c - actions that exist only in test builds (kmsd-test, KMS_TEST_HOOKS).
 *
 * KmsdTestAdvanceClock moves the timed-work clock forward by Seconds and runs one maintenance
 * pass (unless RunMaintenance=false, to observe what requests see before the sweeper runs), so
 * integration tests can watch deletion, rotation and expiry happen without sleeping.
 * The release daemon compiles this file without the define: no such action, no movable clock.
 */
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "kms/api.h"
#include "kms/clock.h"

#ifdef KMS_TEST_HOOKS
static kms_err kms_test_advance_clock(struct kms_call *call)
{
    int64_t seconds;
    bool run = true;
    kms_err rc;

    if (!call->principal.admin)
        return KMS_E_NO_PERMISSION;
    rc = kms_arg_int(call, "Seconds", 0, 100LL * 365 * 86400, 0, &seconds);
    if (rc == KMS_OK)
        rc = kms_arg_bool(call, "RunMaintenance", true, &run);
    if (rc != KMS_OK)
        return rc;
    kms_clock_advance(seconds);
    if (run)
        rc = kms_maintenance_run(kms_clock_now());
    if (rc != KMS_OK)
        return rc;
    return kms_out_time(call->out, "Now", kms_clock_now());
}

static const struct kms_action kms_test_actions[] = {
    {"KmsdTestAdvanceClock", kms_test_advance_clock, false},
};

const struct kms_action *kms_test_hook_action(const char *name)
{
    for (size_t i = 0; i < sizeof(kms_test_actions) / sizeof(kms_test_actions[0]); i++)
        if (strcmp(kms_test_actions[i].name, name) == 0)
            return &kms_test_actions[i];
    return NULL;
}
#else
const struct kms_action *kms_test_hook_action(const char *name)
{
    return NULL;
}
#endif
