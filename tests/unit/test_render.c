/*
 * test_render.c - response bodies (src/render/): exact JSON and XML text for the shapes handlers
 * build (spec/protocol.md §8.2, §8.3, §10.1), escaping, numbers, and failure behaviour.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kms/render.h"

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"

/* Renders tree with both renderers and compares with the expected texts (NULL: skip that one). */
static void check_tree(const cJSON *tree, const char *want_json, const char *want_xml)
{
    struct kms_buf b = {0};

    if (want_json != NULL) {
        assert_int_equal(kms_render_json(tree, &b), KMS_OK);
        assert_non_null(b.data);
        assert_string_equal(b.data, want_json);
        assert_int_equal(b.len, strlen(want_json));
        kms_buf_reset(&b);
    }
    if (want_xml != NULL) {
        assert_int_equal(kms_render_xml(tree, &b), KMS_OK);
        assert_non_null(b.data);
        assert_string_equal(b.data, want_xml);
        assert_int_equal(b.len, strlen(want_xml));
    }
    kms_buf_free(&b);
}

/* Same, with the tree given as JSON text (cJSON_Parse keeps member order). */
static void check(const char *tree_json, const char *want_json, const char *want_xml)
{
    cJSON *tree = cJSON_Parse(tree_json);

    assert_non_null(tree);
    check_tree(tree, want_json, want_xml);
    cJSON_Delete(tree);
}

/* An object {"S": s} built through the API, so s may hold bytes JSON text cannot carry. */
static cJSON *string_tree(const char *s)
{
    cJSON *tree = cJSON_CreateObject();

    assert_non_null(tree);
    assert_non_null(cJSON_AddStringToObject(tree, "S", s));
    return tree;
}

static void check_string(const char *s, const char *want_json_value, const char *want_xml_text)
{
    cJSON *tree = string_tree(s);
    char json[512], xml[512];

    snprintf(json, sizeof(json), "{\"S\":%s}", want_json_value);
    snprintf(xml, sizeof(xml), XML_DECL "<KMS><S>%s</S></KMS>", want_xml_text);
    check_tree(tree, json, xml);
    cJSON_Delete(tree);
}

static void test_nested_success_body(void **state)
{
    (void)state;
    check("{\"RequestId\":\"3455b9b4-95c1-419d-b310-db6a53b09a39\",\"KeyMetadata\":{"
          "\"KeyId\":\"1234abcd-12ab-34cd-56ef-12345678****\",\"KeyState\":\"Enabled\","
          "\"DeletionProtection\":\"Enabled\",\"RotationInterval\":\"604800s\","
          "\"DeleteDate\":\"\",\"Tags\":{\"Tag\":[{\"TagKey\":\"k\",\"TagValue\":\"v\"}]}}}",
          "{\"RequestId\":\"3455b9b4-95c1-419d-b310-db6a53b09a39\",\"KeyMetadata\":{"
          "\"KeyId\":\"1234abcd-12ab-34cd-56ef-12345678****\",\"KeyState\":\"Enabled\","
          "\"DeletionProtection\":\"Enabled\",\"RotationInterval\":\"604800s\","
          "\"DeleteDate\":\"\",\"Tags\":{\"Tag\":[{\"TagKey\":\"k\",\"TagValue\":\"v\"}]}}}",
          XML_DECL "<KMS><RequestId>3455b9b4-95c1-419d-b310-db6a53b09a39</RequestId>"
                   "<KeyMetadata><KeyId>1234abcd-12ab-34cd-56ef-12345678****</KeyId>"
                   "<KeyState>Enabled</KeyState><DeletionProtection>Enabled</DeletionProtection>"
                   "<RotationInterval>604800s</RotationInterval><DeleteDate></DeleteDate>"
                   "<Tags><Tag><TagKey>k</TagKey><TagValue>v</TagValue></Tag></Tags>"
                   "</KeyMetadata></KMS>");
}

/* The SDKs reject an object where an array is declared: 0 and 1 items must stay arrays. */
static void test_wrapped_list_empty(void **state)
{
    (void)state;
    check("{\"RequestId\":\"r\",\"Keys\":{\"Key\":[]},\"TotalCount\":0}",
          "{\"RequestId\":\"r\",\"Keys\":{\"Key\":[]},\"TotalCount\":0}",
          XML_DECL "<KMS><RequestId>r</RequestId><Keys></Keys><TotalCount>0</TotalCount></KMS>");
}

static void test_wrapped_list_one(void **state)
{
    (void)state;
    check("{\"Keys\":{\"Key\":[{\"KeyId\":\"a\",\"KeyArn\":\"acs:kms:r:1:key/a\"}]},"
          "\"TotalCount\":1,\"PageNumber\":1,\"PageSize\":20}",
          "{\"Keys\":{\"Key\":[{\"KeyId\":\"a\",\"KeyArn\":\"acs:kms:r:1:key/a\"}]},"
          "\"TotalCount\":1,\"PageNumber\":1,\"PageSize\":20}",
          XML_DECL "<KMS><Keys><Key><KeyId>a</KeyId><KeyArn>acs:kms:r:1:key/a</KeyArn></Key></Keys>"
                   "<TotalCount>1</TotalCount><PageNumber>1</PageNumber><PageSize>20</PageSize>"
                   "</KMS>");
}

static void test_wrapped_list_two(void **state)
{
    (void)state;
    check("{\"Keys\":{\"Key\":[{\"KeyId\":\"a\"},{\"KeyId\":\"b\"}]},\"TotalCount\":2}",
          "{\"Keys\":{\"Key\":[{\"KeyId\":\"a\"},{\"KeyId\":\"b\"}]},\"TotalCount\":2}",
          XML_DECL "<KMS><Keys><Key><KeyId>a</KeyId></Key><Key><KeyId>b</KeyId></Key></Keys>"
                   "<TotalCount>2</TotalCount></KMS>");
}

static void test_string_lists(void **state)
{
    (void)state;
    check("{\"VersionStages\":{\"VersionStage\":[\"ACSCurrent\"]}}",
          "{\"VersionStages\":{\"VersionStage\":[\"ACSCurrent\"]}}",
          XML_DECL "<KMS><VersionStages><VersionStage>ACSCurrent</VersionStage></VersionStages>"
                   "</KMS>");
    check("{\"VersionStages\":{\"VersionStage\":[\"ACSCurrent\",\"ACSPrevious\"]}}",
          "{\"VersionStages\":{\"VersionStage\":[\"ACSCurrent\",\"ACSPrevious\"]}}",
          XML_DECL "<KMS><VersionStages><VersionStage>ACSCurrent</VersionStage>"
                   "<VersionStage>ACSPrevious</VersionStage></VersionStages></KMS>");
}

/* Bare arrays (spec §8.2 "a few newer actions") repeat the member's own name in XML. */
static void test_bare_arrays(void **state)
{
    (void)state;
    check("{\"RequestId\":\"r\",\"Permissions\":[\"a\",\"b\"]}",
          "{\"RequestId\":\"r\",\"Permissions\":[\"a\",\"b\"]}",
          XML_DECL "<KMS><RequestId>r</RequestId><Permissions>a</Permissions>"
                   "<Permissions>b</Permissions></KMS>");
    check("{\"ClientKeys\":[{\"ClientKeyId\":\"c1\"},{\"ClientKeyId\":\"c2\"}],\"X\":[]}",
          "{\"ClientKeys\":[{\"ClientKeyId\":\"c1\"},{\"ClientKeyId\":\"c2\"}],\"X\":[]}",
          XML_DECL "<KMS><ClientKeys><ClientKeyId>c1</ClientKeyId></ClientKeys>"
                   "<ClientKeys><ClientKeyId>c2</ClientKeyId></ClientKeys></KMS>");
    check("{\"Empty\":{}}", "{\"Empty\":{}}", XML_DECL "<KMS><Empty></Empty></KMS>");
    check("{}", "{}", XML_DECL "<KMS></KMS>");
}

static void test_numbers(void **state)
{
    (void)state;
    /* 2^40 and -2^52 must not turn into 1.099511627776e+12. */
    check("{\"a\":0,\"b\":1,\"c\":-5,\"d\":100,\"e\":1099511627776,\"f\":1.5,"
          "\"g\":-4503599627370496,\"h\":-0.0,\"i\":3.0,\"j\":1e3}",
          "{\"a\":0,\"b\":1,\"c\":-5,\"d\":100,\"e\":1099511627776,\"f\":1.5,"
          "\"g\":-4503599627370496,\"h\":0,\"i\":3,\"j\":1000}",
          XML_DECL "<KMS><a>0</a><b>1</b><c>-5</c><d>100</d><e>1099511627776</e><f>1.5</f>"
                   "<g>-4503599627370496</g><h>0</h><i>3</i><j>1000</j></KMS>");
    /* Past 2^53, or not integral: %.17g, which round-trips every double. */
    check("{\"a\":0.1,\"b\":9007199254740992,\"c\":1e300,\"d\":-2.5e-7}",
          "{\"a\":0.10000000000000001,\"b\":9007199254740992,"
          "\"c\":1.0000000000000001e+300,\"d\":-2.4999999999999999e-07}",
          XML_DECL "<KMS><a>0.10000000000000001</a><b>9007199254740992</b>"
                   "<c>1.0000000000000001e+300</c><d>-2.4999999999999999e-07</d></KMS>");
}

static void test_number_helper(void **state)
{
    struct kms_buf b = {0};

    (void)state;
    assert_int_equal(kms_render_number(&b, 9007199254740991.0), KMS_OK);
    assert_string_equal(b.data, "9007199254740991");
    kms_buf_reset(&b);
    assert_int_equal(kms_render_number(&b, -9007199254740991.0), KMS_OK);
    assert_string_equal(b.data, "-9007199254740991");
    kms_buf_reset(&b);
    assert_int_equal(kms_render_number(&b, 1152921504606846976.0), KMS_OK); /* 2^60 */
    assert_string_equal(b.data, "1.152921504606847e+18");
    kms_buf_reset(&b);
    assert_int_equal(kms_render_number(&b, 18446744073709551616.0), KMS_OK); /* 2^64 */
    assert_string_equal(b.data, "1.8446744073709552e+19");
    kms_buf_reset(&b);
    assert_int_equal(kms_render_number(&b, NAN), KMS_E_INTERNAL);
    assert_int_equal(kms_render_number(&b, INFINITY), KMS_E_INTERNAL);
    assert_int_equal(b.len, 0);
    kms_buf_free(&b);
}

/* Neither format can express NaN/infinity; the body must stay well-formed anyway. */
static void test_non_finite_numbers(void **state)
{
    cJSON *tree = cJSON_CreateObject();

    (void)state;
    cJSON_AddNumberToObject(tree, "N", NAN);
    cJSON_AddNumberToObject(tree, "I", -INFINITY);
    check_tree(tree, "{\"N\":null,\"I\":null}", XML_DECL "<KMS><N></N><I></I></KMS>");
    cJSON_Delete(tree);
}

static void test_booleans_and_null(void **state)
{
    (void)state;
    check("{\"Value\":true,\"SignatureValid\":false,\"Nothing\":null,\"L\":[true,false,null]}",
          "{\"Value\":true,\"SignatureValid\":false,\"Nothing\":null,\"L\":[true,false,null]}",
          XML_DECL "<KMS><Value>true</Value><SignatureValid>false</SignatureValid>"
                   "<Nothing></Nothing><L>true</L><L>false</L><L></L></KMS>");
}

static void test_string_escaping(void **state)
{
    (void)state;
    check_string("", "\"\"", "");
    check_string("say \"hi\"", "\"say \\\"hi\\\"\"", "say &quot;hi&quot;");
    check_string("C:\\dir\\", "\"C:\\\\dir\\\\\"", "C:\\dir\\");
    check_string("a/b", "\"a/b\"", "a/b");
    check_string("<a href='x'>&amp;</a>", "\"<a href='x'>&amp;</a>\"",
                 "&lt;a href=&apos;x&apos;&gt;&amp;amp;&lt;/a&gt;");
    /* PEM text: real line breaks. XML keeps \n and \t, and protects \r from EOL normalisation. */
    check_string("-----BEGIN-----\nAB\r\nCD\t", "\"-----BEGIN-----\\nAB\\r\\nCD\\t\"",
                 "-----BEGIN-----\nAB&#13;\nCD\t");
    /* Other controls: \b \f short forms or \u00XX in JSON; U+FFFD in XML (1.0 forbids them). */
    check_string("\b\f\x01\x1f\x7f", "\"\\b\\f\\u0001\\u001f\x7f\"",
                 "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\x7f");
}

static void test_string_utf8(void **state)
{
    (void)state;
    check_string("中文", "\"中文\"", "中文");
    check_string("😀 ok", "\"😀 ok\"", "😀 ok");
    check_string("\xC2\x80\xE2\x80\xA8\xF4\x8F\xBF\xBF", "\"\xC2\x80\xE2\x80\xA8\xF4\x8F\xBF\xBF\"",
                 "\xC2\x80\xE2\x80\xA8\xF4\x8F\xBF\xBF");
    /* U+FFFE and U+FFFF are valid UTF-8 and fine in JSON, but not XML 1.0 characters. */
    check_string("a\xEF\xBF\xBE\xEF\xBF\xBFz", "\"a\xEF\xBF\xBE\xEF\xBF\xBFz\"",
                 "a\xEF\xBF\xBD\xEF\xBF\xBDz");
    /* Ill-formed UTF-8: one U+FFFD per offending byte, in both formats. */
    check_string("a\xFF"
                 "b",
                 "\"a\xEF\xBF\xBD"
                 "b\"",
                 "a\xEF\xBF\xBD"
                 "b");
    check_string("\xC0\x80|\xED\xA0\x80|\xE4\xB8", /* overlong NUL, surrogate, truncated 中 */
                 "\"\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|"
                 "\xEF\xBF\xBD\xEF\xBF\xBD\"",
                 "\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|"
                 "\xEF\xBF\xBD\xEF\xBF\xBD");
}

/* Member names go through the same escaping in JSON. */
static void test_member_names(void **state)
{
    cJSON *tree = cJSON_CreateObject();

    (void)state;
    cJSON_AddStringToObject(tree, "a\"b", "1");
    cJSON_AddStringToObject(tree, "中", "2");
    check_tree(tree, "{\"a\\\"b\":\"1\",\"中\":\"2\"}", NULL);
    cJSON_Delete(tree);
}

/*
 * Regression (fuzz_render): a member name that is not an XML name used to be written as markup,
 * e.g. "Keota/lCount" gave <Keota/lCount>2</Keota/lCount>. Such names now fail the XML render
 * and leave the buffer as it was; JSON still escapes any name.
 */
static void test_xml_member_names_checked(void **state)
{
    static const char *const bad[] = {"Keota/lCount", "a b", "a<b", "a>b", "a&b", "a\"b", "1a",
                                      "-a",           ".a",  "",    "中",  "a:b", "a\tb", "x\x7f"};
    static const char *const good[] = {"A", "_", "a.b-c_d", "KeyId", "z9"};
    struct kms_buf b = {0};

    (void)state;
    assert_int_equal(kms_buf_append_str(&b, "prefix|"), KMS_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *tree = cJSON_CreateObject();
        cJSON *inner = cJSON_AddObjectToObject(tree, "Outer");

        /* Deep inside a valid tree, and inside an empty array: still refused. */
        cJSON_AddStringToObject(inner, bad[i], "2");
        assert_int_equal(kms_render_xml(tree, &b), KMS_E_INTERNAL);
        assert_string_equal(b.data, "prefix|");
        assert_int_equal(b.len, 7);
        cJSON_DeleteItemFromObject(inner, bad[i]);
        cJSON_AddArrayToObject(inner, bad[i]);
        assert_int_equal(kms_render_xml(tree, &b), KMS_E_INTERNAL);
        assert_string_equal(b.data, "prefix|");
        cJSON_Delete(tree);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cJSON *tree = cJSON_CreateObject();
        char want[128];

        cJSON_AddStringToObject(tree, good[i], "v");
        snprintf(want, sizeof(want), XML_DECL "<KMS><%s>v</%s></KMS>", good[i], good[i]);
        kms_buf_reset(&b);
        assert_int_equal(kms_render_xml(tree, &b), KMS_OK);
        assert_string_equal(b.data, want);
        cJSON_Delete(tree);
    }
    kms_buf_free(&b);
}

/* Items added by reference or with a constant key carry flag bits above the type byte. */
static void test_reference_items(void **state)
{
    cJSON *tree = cJSON_CreateObject();
    cJSON *stages = cJSON_CreateArray();
    cJSON *id = cJSON_CreateString("r-1");

    (void)state;
    cJSON_AddItemToArray(stages, cJSON_CreateString("ACSCurrent"));
    cJSON_AddItemReferenceToObject(tree, "RequestId", id);
    cJSON_AddItemToObjectCS(tree, "Count", cJSON_CreateNumber(2));
    cJSON_AddItemReferenceToObject(cJSON_AddObjectToObject(tree, "VersionStages"), "VersionStage",
                                   stages);
    check_tree(tree,
               "{\"RequestId\":\"r-1\",\"Count\":2,"
               "\"VersionStages\":{\"VersionStage\":[\"ACSCurrent\"]}}",
               XML_DECL "<KMS><RequestId>r-1</RequestId><Count>2</Count><VersionStages>"
                        "<VersionStage>ACSCurrent</VersionStage></VersionStages></KMS>");
    cJSON_Delete(tree);
    cJSON_Delete(stages);
    cJSON_Delete(id);
}

static void test_json_string_helper(void **state)
{
    struct kms_buf b = {0};

    (void)state;
    assert_int_equal(kms_render_json_string(&b, "a\0b", 3), KMS_OK);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, "\"a\\u0000b\"", 11);
    assert_int_equal(kms_render_json_string(&b, "", 0), KMS_OK);
    assert_string_equal(b.data, "\"a\\u0000b\"\"\"");
    kms_buf_free(&b);
}

/* Every ASCII byte and a few non-ASCII strings survive render -> cJSON_Parse unchanged. */
static void test_json_round_trip(void **state)
{
    char all[128];
    const char *samples[] = {all, "中文😀", "\xE2\x80\xA8\xE2\x80\xA9", "\\\"\\u0041"};
    struct kms_buf b = {0};

    (void)state;
    for (int i = 1; i < 128; i++)
        all[i - 1] = (char)i;
    all[127] = '\0';
    for (size_t i = 0; i < KMS_ARRAY_LEN(samples); i++) {
        cJSON *tree = string_tree(samples[i]);
        cJSON *back;

        kms_buf_reset(&b);
        assert_int_equal(kms_render_json(tree, &b), KMS_OK);
        back = cJSON_Parse(b.data);
        assert_non_null(back);
        assert_true(cJSON_Compare(tree, back, true));
        cJSON_Delete(back);
        cJSON_Delete(tree);
    }
    kms_buf_free(&b);
}

/* spec §10.1: the error body, with HttpStatus a number. */
static void test_error_body(void **state)
{
    (void)state;
    check("{\"RequestId\":\"e85db688-a2d3-44ca-9790-4259f59e90d8\","
          "\"HostId\":\"kms.cn-hangzhou.aliyuncs.com\",\"Code\":\"IllegalTimestamp\","
          "\"Message\":\"The input parameter \\\"Timestamp\\\" that is mandatory for processing "
          "this request is not supplied.\",\"HttpStatus\":400}",
          "{\"RequestId\":\"e85db688-a2d3-44ca-9790-4259f59e90d8\","
          "\"HostId\":\"kms.cn-hangzhou.aliyuncs.com\",\"Code\":\"IllegalTimestamp\","
          "\"Message\":\"The input parameter \\\"Timestamp\\\" that is mandatory for processing "
          "this request is not supplied.\",\"HttpStatus\":400}",
          XML_DECL "<KMS><RequestId>e85db688-a2d3-44ca-9790-4259f59e90d8</RequestId>"
                   "<HostId>kms.cn-hangzhou.aliyuncs.com</HostId><Code>IllegalTimestamp</Code>"
                   "<Message>The input parameter &quot;Timestamp&quot; that is mandatory for "
                   "processing this request is not supplied.</Message>"
                   "<HttpStatus>400</HttpStatus></KMS>");
}

/* Both renderers append; a failure leaves what the buffer held before, and nothing more. */
static void test_append_and_failure(void **state)
{
    struct kms_buf b = {0};
    cJSON *arr = cJSON_CreateArray();
    cJSON *str = cJSON_CreateString("x");
    cJSON *bad = cJSON_CreateObject();

    (void)state;
    cJSON_AddStringToObject(bad, "Ok", "fine");
    cJSON_AddItemToObject(bad, "Raw", cJSON_CreateRaw("{\"a\":1}"));

    assert_int_equal(kms_buf_append_str(&b, "prefix|"), KMS_OK);
    assert_int_equal(kms_render_json(bad, &b), KMS_E_INTERNAL);
    assert_string_equal(b.data, "prefix|");
    assert_int_equal(kms_render_xml(bad, &b), KMS_E_INTERNAL);
    assert_string_equal(b.data, "prefix|");
    assert_int_equal(b.len, 7);

    assert_int_equal(kms_render_json(arr, &b), KMS_E_INTERNAL);
    assert_int_equal(kms_render_json(str, &b), KMS_E_INTERNAL);
    assert_int_equal(kms_render_json(NULL, &b), KMS_E_INTERNAL);
    assert_int_equal(kms_render_xml(arr, &b), KMS_E_INTERNAL);
    assert_int_equal(kms_render_xml(NULL, &b), KMS_E_INTERNAL);
    assert_string_equal(b.data, "prefix|");

    cJSON_DeleteItemFromObject(bad, "Raw");
    assert_int_equal(kms_render_json(bad, &b), KMS_OK);
    assert_string_equal(b.data, "prefix|{\"Ok\":\"fine\"}");
    assert_int_equal(kms_render_xml(bad, &b), KMS_OK);
    assert_string_equal(b.data, "prefix|{\"Ok\":\"fine\"}" XML_DECL "<KMS><Ok>fine</Ok></KMS>");

    /* A failure on an empty, never-allocated buffer must not touch its NULL data. */
    kms_buf_free(&b);
    assert_int_equal(kms_render_json(arr, &b), KMS_E_INTERNAL);
    assert_null(b.data);

    cJSON_Delete(arr);
    cJSON_Delete(str);
    cJSON_Delete(bad);
    kms_buf_free(&b);
}

/* A large body forces many buffer reallocations; the output must still be exact. */
static void test_large_list(void **state)
{
    cJSON *tree = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(cJSON_AddObjectToObject(tree, "Keys"), "Key");
    struct kms_buf b = {0};
    size_t want_json = strlen("{\"Keys\":{\"Key\":[]}}");

    (void)state;
    for (int i = 0; i < 2000; i++) {
        cJSON *k = cJSON_CreateObject();

        cJSON_AddStringToObject(k, "KeyId", "0123456789");
        cJSON_AddItemToArray(list, k);
        want_json += strlen("{\"KeyId\":\"0123456789\"}") + (i ? 1 : 0);
    }
    assert_int_equal(kms_render_json(tree, &b), KMS_OK);
    assert_int_equal(b.len, want_json);
    assert_int_equal(strlen(b.data), want_json);
    kms_buf_reset(&b);
    assert_int_equal(kms_render_xml(tree, &b), KMS_OK);
    assert_int_equal(b.len, strlen(XML_DECL "<KMS><Keys></Keys></KMS>") +
                                2000 * strlen("<Key><KeyId>0123456789</KeyId></Key>"));
    kms_buf_free(&b);
    cJSON_Delete(tree);
}

/* root -> levels nested objects {"N":{"N":…{}}}. */
static cJSON *nested(int levels)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *cur = root;

    for (int i = 0; i < levels; i++)
        cur = cJSON_AddObjectToObject(cur, "N");
    return root;
}

static void test_depth_limit(void **state)
{
    cJSON *ok = nested(KMS_RENDER_MAX_DEPTH);
    cJSON *deep = nested(KMS_RENDER_MAX_DEPTH + 1);
    struct kms_buf b = {0};

    (void)state;
    assert_int_equal(kms_render_json(ok, &b), KMS_OK);
    assert_int_equal(b.len, 2 + (size_t)KMS_RENDER_MAX_DEPTH * strlen("\"N\":{}"));
    kms_buf_reset(&b);
    assert_int_equal(kms_render_xml(ok, &b), KMS_OK);
    kms_buf_reset(&b);
    assert_int_equal(kms_render_json(deep, &b), KMS_E_INTERNAL);
    assert_int_equal(kms_render_xml(deep, &b), KMS_E_INTERNAL);
    assert_int_equal(b.len, 0);
    kms_buf_free(&b);
    cJSON_Delete(ok);
    cJSON_Delete(deep);
}

static void test_utf8_seq(void **state)
{
    uint32_t cp = 0;

    (void)state;
    assert_int_equal(kms_render_utf8_seq("A", 1, &cp), 1);
    assert_int_equal(cp, 0x41);
    assert_int_equal(kms_render_utf8_seq("\xC3\xA9x", 3, &cp), 2);
    assert_int_equal(cp, 0xe9);
    assert_int_equal(kms_render_utf8_seq("\xE4\xB8\xAD", 3, &cp), 3);
    assert_int_equal(cp, 0x4e2d);
    assert_int_equal(kms_render_utf8_seq("\xF0\x9F\x98\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x1f600);
    assert_int_equal(kms_render_utf8_seq("\xE4\xB8\xAD", 2, &cp), 0); /* truncated by len */
    assert_int_equal(kms_render_utf8_seq("\x80", 1, &cp), 0);
    assert_int_equal(kms_render_utf8_seq("\xC1\xBF", 2, &cp), 0);
    assert_int_equal(kms_render_utf8_seq("\xE0\x9F\xBF", 3, &cp), 0);
    assert_int_equal(kms_render_utf8_seq("\xF0\x8F\xBF\xBF", 4, &cp), 0);
    assert_int_equal(kms_render_utf8_seq("\xED\xBF\xBF", 3, &cp), 0);
    assert_int_equal(kms_render_utf8_seq("\xF4\x90\x80\x80", 4, &cp), 0);
    assert_int_equal(kms_render_utf8_seq("\xF5\x80\x80\x80", 4, &cp), 0);
    assert_int_equal(kms_render_utf8_seq("\xE4\x41\xAD", 3, &cp), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_success_body),
        cmocka_unit_test(test_wrapped_list_empty),
        cmocka_unit_test(test_wrapped_list_one),
        cmocka_unit_test(test_wrapped_list_two),
        cmocka_unit_test(test_string_lists),
        cmocka_unit_test(test_bare_arrays),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_number_helper),
        cmocka_unit_test(test_non_finite_numbers),
        cmocka_unit_test(test_booleans_and_null),
        cmocka_unit_test(test_string_escaping),
        cmocka_unit_test(test_string_utf8),
        cmocka_unit_test(test_member_names),
        cmocka_unit_test(test_xml_member_names_checked),
        cmocka_unit_test(test_reference_items),
        cmocka_unit_test(test_json_string_helper),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_append_and_failure),
        cmocka_unit_test(test_large_list),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_utf8_seq),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
