'use strict';
// kmsd driven by Alibaba Cloud's official Node SDK, unchanged: @alicloud/kms20160120 1.2.0 (V1
// HMAC-SHA1 signatures, every parameter in the query string of a POST) and @alicloud/openapi-client
// 0.4.15 in its default mode (V3 ACS3-HMAC-SHA256, as the V2.0 SDKs sign). Started by run.sh, which
// passes KMS_ENDPOINT, KMS_ACCESS_KEY_ID and KMS_ACCESS_KEY_SECRET.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const Kms = require('@alicloud/kms20160120');
const OpenApi = require('@alicloud/openapi-client');
const { RuntimeOptions } = require('@alicloud/tea-util');

const endpoint = process.env.KMS_ENDPOINT;
const accessKeyId = process.env.KMS_ACCESS_KEY_ID;
const accessKeySecret = process.env.KMS_ACCESS_KEY_SECRET;
assert.ok(endpoint && accessKeyId && accessKeySecret, 'run through tests/interop/run.sh');

// The development certificate is self-signed.
const runtime = () => new RuntimeOptions({ ignoreSSL: true, autoretry: false, readTimeout: 30000 });
const client = new Kms.default({ endpoint, accessKeyId, accessKeySecret, regionId: 'cn-hangzhou', type: 'access_key' });
const run = Date.now().toString(36) + crypto.randomBytes(3).toString('hex');

async function call(method, params = {}) {
  const Req = Kms[method[0].toUpperCase() + method.slice(1) + 'Request'];
  return client[method + 'Ex'](new Req(params), runtime());
}

async function createKey(params = {}) {
  const r = await call('createKey', params);
  return r.keyMetadata;
}

test('CreateKey and DescribeKey by id and by alias', async () => {
  const md = await createKey({ description: 'interop ' + run, keySpec: 'Aliyun_AES_256' });
  assert.match(md.keyId, /^[0-9a-f-]{36}$/);
  assert.equal(md.keyState, 'Enabled');
  assert.equal(md.keySpec, 'Aliyun_AES_256');
  assert.equal(md.keyUsage, 'ENCRYPT/DECRYPT');
  assert.equal(md.origin, 'Aliyun_KMS');
  assert.equal(md.protectionLevel, 'SOFTWARE');
  assert.equal(md.description, 'interop ' + run);
  const alias = `alias/interop-${run}`;
  await call('createAlias', { aliasName: alias, keyId: md.keyId });
  const byAlias = await call('describeKey', { keyId: alias });
  assert.equal(byAlias.keyMetadata.keyId, md.keyId);
  assert.equal(byAlias.keyMetadata.arn, md.arn);
  const aliases = await call('listAliasesByKeyId', { keyId: md.keyId });
  assert.deepEqual(aliases.aliases.alias.map((a) => a.aliasName), [alias]);
});

test('Encrypt/Decrypt with an EncryptionContext object (flattened by the SDK) and a JSON string', async () => {
  const { keyId } = await createKey();
  const context = { Example: 'Example', 'a b': 'c&d', 中文: '值', 'k=v': 'x/y+z' };
  const plaintext = Buffer.from('interop plaintext ' + run).toString('base64');
  const enc = await call('encrypt', { keyId, plaintext, encryptionContext: context });
  assert.equal(enc.keyId, keyId);
  assert.ok(enc.keyVersionId);
  // The same context as an object, and as the JSON text other SDKs send.
  const dec1 = await call('decrypt', { ciphertextBlob: enc.ciphertextBlob, encryptionContext: context });
  assert.equal(dec1.plaintext, plaintext);
  assert.equal(dec1.keyId, keyId);
  const dec2 = await call('decrypt', {
    ciphertextBlob: enc.ciphertextBlob,
    encryptionContext: JSON.stringify(context),
  });
  assert.equal(dec2.plaintext, plaintext);
  // Encrypted with the JSON text, decrypted with the object.
  const enc2 = await call('encrypt', { keyId, plaintext, encryptionContext: JSON.stringify({ n: '1' }) });
  const dec3 = await call('decrypt', { ciphertextBlob: enc2.ciphertextBlob, encryptionContext: { n: '1' } });
  assert.equal(dec3.plaintext, plaintext);
  // Another context does not decrypt.
  await assert.rejects(
    call('decrypt', { ciphertextBlob: enc.ciphertextBlob, encryptionContext: { Example: 'other' } }),
    (e) => e.code === 'InvalidParameterError' && e.data.Code === 'InvalidParameter' && /code: 400/.test(e.message),
  );
});

test('GenerateDataKey and GenerateDataKeyWithoutPlaintext', async () => {
  const { keyId } = await createKey({ keySpec: 'Aliyun_SM4' });
  const r = await call('generateDataKey', { keyId, numberOfBytes: 64, encryptionContext: { file: 'x' } });
  assert.equal(Buffer.from(r.plaintext, 'base64').length, 64);
  const d = await call('decrypt', { ciphertextBlob: r.ciphertextBlob, encryptionContext: { file: 'x' } });
  assert.equal(d.plaintext, r.plaintext);
  const r2 = await call('generateDataKey', { keyId, keySpec: 'AES_128' });
  assert.equal(Buffer.from(r2.plaintext, 'base64').length, 16);
  const r3 = await call('generateDataKeyWithoutPlaintext', { keyId });
  assert.equal(r3.plaintext, undefined);
  const d3 = await call('decrypt', { ciphertextBlob: r3.ciphertextBlob });
  assert.equal(Buffer.from(d3.plaintext, 'base64').length, 32);
});

test('ListKeys paging', async () => {
  const mine = [];
  for (let i = 0; i < 3; i++) mine.push((await createKey({ description: `page ${i}` })).keyId);
  const first = await call('listKeys', { pageSize: 2, pageNumber: 1 });
  const total = first.totalCount;
  assert.ok(total >= 3);
  assert.equal(first.pageSize, 2);
  assert.equal(first.pageNumber, 1);
  assert.ok(Array.isArray(first.keys.key));
  assert.equal(first.keys.key.length, 2);
  const seen = [];
  for (let page = 1; (page - 1) * 2 < total; page++) {
    const r = await call('listKeys', { pageSize: 2, pageNumber: page });
    assert.equal(r.totalCount, total);
    for (const k of r.keys.key) {
      assert.equal(k.keyArn, `acs:kms:cn-hangzhou:1000000000000000:key/${k.keyId}`);
      seen.push(k.keyId);
    }
  }
  assert.equal(seen.length, total);
  for (const id of mine) assert.ok(seen.includes(id), id);
  const beyond = await call('listKeys', { pageSize: 2, pageNumber: Math.ceil(total / 2) + 1 });
  assert.deepEqual(beyond.keys.key, []);
});

test('a disabled key: Rejected.Disabled surfaces as Rejected.DisabledError', async () => {
  const { keyId } = await createKey();
  const plaintext = Buffer.from('x').toString('base64');
  const enc = await call('encrypt', { keyId, plaintext });
  await call('disableKey', { keyId });
  for (const attempt of [
    () => call('encrypt', { keyId, plaintext }),
    () => call('decrypt', { ciphertextBlob: enc.ciphertextBlob }),
    () => call('generateDataKey', { keyId }),
  ]) {
    await assert.rejects(attempt(), (e) => {
      assert.equal(e.code, 'Rejected.DisabledError');
      assert.equal(e.data.Code, 'Rejected.Disabled');
      assert.match(e.message, /code: 409/);
      assert.ok(e.data.RequestId);
      return true;
    });
  }
  await call('enableKey', { keyId });
  const dec = await call('decrypt', { ciphertextBlob: enc.ciphertextBlob });
  assert.equal(dec.plaintext, plaintext);
  // An unknown key: 404 Forbidden.KeyNotFound.
  await assert.rejects(call('describeKey', { keyId: 'no-such-key' }),
    (e) => e.code === 'Forbidden.KeyNotFoundError' && /code: 404/.test(e.message));
});

test('tags and deletion through the SDK', async () => {
  const { keyId } = await createKey();
  await call('tagResource', { keyId, tags: JSON.stringify([{ TagKey: 'Project', TagValue: 'Interop' }]) });
  const tags = await call('listResourceTags', { keyId });
  assert.deepEqual(tags.tags.tag.map((t) => [t.tagKey, t.tagValue]), [['Project', 'Interop']]);
  await call('untagResource', { keyId, tagKeys: JSON.stringify(['Project']) });
  assert.deepEqual((await call('listResourceTags', { keyId })).tags.tag, []);
  await call('scheduleKeyDeletion', { keyId, pendingWindowInDays: 7 });
  assert.equal((await call('describeKey', { keyId })).keyMetadata.keyState, 'PendingDeletion');
  await call('cancelKeyDeletion', { keyId });
  assert.equal((await call('describeKey', { keyId })).keyMetadata.keyState, 'Enabled');
});

test('a V3 (ACS3-HMAC-SHA256) call through openapi-client in its default mode', async () => {
  const v3 = new OpenApi.default(new OpenApi.Config({ endpoint, accessKeyId, accessKeySecret, regionId: 'cn-hangzhou' }));
  const params = (action) => new OpenApi.Params({
    action, version: '2016-01-20', protocol: 'HTTPS', pathname: '/', method: 'POST',
    authType: 'AK', style: 'RPC', reqBodyType: 'formData', bodyType: 'json',
  });
  const { keyId } = await createKey();
  const created = await v3.callApi(params('DescribeKey'), new OpenApi.OpenApiRequest({ query: { KeyId: keyId } }), runtime());
  assert.equal(created.statusCode, 200);
  assert.equal(created.body.KeyMetadata.KeyId, keyId);
  const plaintext = Buffer.from('v3 ' + run).toString('base64');
  const enc = await v3.callApi(params('Encrypt'), new OpenApi.OpenApiRequest({
    query: { KeyId: keyId, Plaintext: plaintext, EncryptionContext: JSON.stringify({ v: '3' }) },
  }), runtime());
  // What V3 encrypted, the V1 SDK decrypts (the context as the flattened map).
  const dec = await call('decrypt', { ciphertextBlob: enc.body.CiphertextBlob, encryptionContext: { v: '3' } });
  assert.equal(dec.plaintext, plaintext);
  await assert.rejects(
    v3.callApi(params('DescribeKey'), new OpenApi.OpenApiRequest({ query: { KeyId: 'no-such-key' } }), runtime()),
    (e) => e.code === 'Forbidden.KeyNotFound' && e.data.statusCode === 404,
  );
});
