/* test_hooks.c - placeholder: the test-only actions land with the dispatcher. */
typedef int kms_test_hooks_placeholder;
