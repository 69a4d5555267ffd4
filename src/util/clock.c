/*
 * clock.c - the timed-work clock. Compiled twice: plain for kmsd, with KMS_TEST_HOOKS for
 * kmsd-test, where an offset can be added so tests need no sleeps.
 */
#include <stdatomic.h>

#include "kms/clock.h"

#ifdef KMS_TEST_HOOKS
static _Atomic int64_t kms_clock_offset;

void kms_clock_advance(int64_t seconds)
{
    atomic_fetch_add(&kms_clock_offset, seconds);
}

time_t kms_clock_now(void)
{
    return time(NULL) + (time_t)atomic_load(&kms_clock_offset);
}
#else
time_t kms_clock_now(void)
{
    return time(NULL);
}
#endif
