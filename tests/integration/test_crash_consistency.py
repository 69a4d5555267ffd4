"""Crash consistency (issue 8): kmsd is killed with SIGKILL at random moments while several
clients write (CreateKey, CreateAlias, CreateKeyVersion, TagResource, PutSecretValue,
ScheduleKeyDeletion), restarted on the same data directory, and checked:

* every acknowledged write (HTTP 200 received) is there and usable after the restart: the key
  exists in its state and encrypts/decrypts with the expected primary version, the alias
  resolves to its key, the secret version reads back exactly and carries ACSCurrent when it was
  the last one put, the tag is there, the new version is primary, the key scheduled for deletion
  is PendingDeletion;
* the request in flight at the moment of the kill is either wholly there or wholly absent;
* nothing is half there, whoever wrote it: SQLite integrity_check and foreign_key_check pass;
  every key has its primary version; every version's material unwraps under master.key (the test
  unwraps it itself through libcrypto); every secret has a version labelled ACSCurrent; no tag
  names a key that does not exist.

Each client thread owns its keys and secrets, so the expected state of every object is known
exactly. A round is 0.05-1.0 s of load; the number of rounds is KMSD_CRASH_ROUNDS (default 50,
what CI runs), KMSD_CRASH_SEED replays a run (the seed is printed on failure).

What SIGKILL proves and what it cannot: a killed process leaves its written pages in the kernel's
page cache, so this test proves atomicity (one transaction per request) and that no request is
acknowledged before its transaction committed. That the commit also survives power loss rests on
synchronous=FULL in WAL mode, which fsyncs the WAL before COMMIT returns (docs/security.md
§17); tests/unit/test_store_durability.c checks those settings are the ones in force.
"""

import http.client
import json
import os
import random
import signal
import sqlite3
import ssl
import threading
import time
import unittest
import uuid

from kmsd import DEFAULT_CONFIG, Server, b64, unb64
from test_secrets_at_rest import LIB, gcm_open

ROUNDS = int(os.environ.get("KMSD_CRASH_ROUNDS", "50"))
THREADS = int(os.environ.get("KMSD_CRASH_THREADS", "4"))
SECRETS_PER_THREAD = 6
SECRET_VERSIONS_KEPT = 8  # kmsd keeps 10 versions per secret; the oldest unlabelled roll off
TAG_KEYS = 8              # tag keys t0..t7 cycle, so the per-key tag limit is never reached
CONFIG = DEFAULT_CONFIG + (
    "[keys]\nmax_keys = 1000000\nmax_aliases = 1000000\nmax_key_versions = 100000000\n"
    "[secrets]\nmax_secrets = 100000\n")
NETWORK_ERRORS = (OSError, http.client.HTTPException, ssl.SSLError)


class Key:
    def __init__(self, key_id, owner, primary):
        self.key_id = key_id
        self.owner = owner
        self.primary = primary
        self.versions = [primary]
        self.aliases = set()
        self.tags = {}
        self.pending = False


class Secret:
    def __init__(self, name, owner):
        self.name = name
        self.owner = owner
        self.versions = []  # (version_id, data) in the order they were put

    def current(self):
        return self.versions[-1] if self.versions else None


class CrashConsistencyTest(unittest.TestCase):

    def setUp(self):
        self.seed = int(os.environ.get("KMSD_CRASH_SEED") or random.randrange(1 << 30))
        self.rng = random.Random(self.seed)
        self.srv = Server(config=CONFIG).start()
        self.keys = {}        # key_id -> Key
        self.secrets = {}     # name -> Secret
        self.aliases = {}     # alias name -> key_id
        self.lock = threading.Lock()
        self.errors = []
        self.acked = 0
        self.uncertain_total = 0
        self.unwrapped = set()  # version ids whose stored material was already checked

    def tearDown(self):
        self.srv.stop(signal.SIGKILL)
        self.srv.__exit__(None, None, None)

    def fail_with_seed(self, msg):
        self.fail("%s (KMSD_CRASH_SEED=%d)" % (msg, self.seed))

    # -- the load -------------------------------------------------------------------------
    def owned(self, owner, pending=False):
        return [k for k in self.keys.values() if k.owner == owner and k.pending == pending]

    def choose(self, owner, rng, counter):
        """The next write of a client: (what, params, context) or None."""
        with self.lock:
            keys = self.owned(owner)
            secrets = [s for s in self.secrets.values() if s.owner == owner]
        roll = rng.random()
        if not keys or roll < 0.22:
            marker = "crash-%d-%s-%s" % (owner, counter, uuid.uuid4().hex[:8])
            return "CreateKey", {"Description": marker}, marker
        key = rng.choice(keys)
        if roll < 0.36:
            name = "alias/crash-%d-%s-%s" % (owner, counter, uuid.uuid4().hex[:6])
            return "CreateAlias", {"AliasName": name, "KeyId": key.key_id}, (name, key)
        if roll < 0.50:
            return "CreateKeyVersion", {"KeyId": key.key_id}, key
        if roll < 0.66:
            tag_key, value = "t%d" % rng.randrange(TAG_KEYS), uuid.uuid4().hex
            return ("TagResource", {"KeyId": key.key_id,
                                    "Tags": json.dumps([{"TagKey": tag_key, "TagValue": value}])},
                    (key, tag_key, value))
        if roll < 0.95:
            secret = rng.choice(secrets)
            vid, data = uuid.uuid4().hex, "value-%s-%s" % (uuid.uuid4().hex, "x" * rng.randrange(200))
            return ("PutSecretValue", {"SecretName": secret.name, "VersionId": vid, "SecretData": data},
                    (secret, vid, data))
        if len(keys) < 3:
            return "CreateKeyVersion", {"KeyId": key.key_id}, key
        return "ScheduleKeyDeletion", {"KeyId": key.key_id, "PendingWindowInDays": "7"}, key

    def apply(self, what, ctx, r):
        """Records an acknowledged write in the model."""
        with self.lock:
            self.acked += 1
            if what == "CreateKey":
                md = r.json["KeyMetadata"]
                self.keys[md["KeyId"]] = Key(md["KeyId"], self.owner_of_marker(ctx),
                                             md["PrimaryKeyVersion"])
                self.touched_keys.add(md["KeyId"])
            elif what == "CreateAlias":
                name, key = ctx
                key.aliases.add(name)
                self.aliases[name] = key.key_id
                self.touched_keys.add(key.key_id)
            elif what == "CreateKeyVersion":
                vid = r.json["KeyVersion"]["KeyVersionId"]
                ctx.versions.append(vid)
                ctx.primary = vid
                self.touched_keys.add(ctx.key_id)
            elif what == "TagResource":
                key, tag_key, value = ctx
                key.tags[tag_key] = value
                self.touched_keys.add(key.key_id)
            elif what == "PutSecretValue":
                secret, vid, data = ctx
                secret.versions.append((vid, data))
                self.touched_secrets.add(secret.name)
            elif what == "ScheduleKeyDeletion":
                ctx.pending = True
                self.touched_keys.add(ctx.key_id)

    @staticmethod
    def owner_of_marker(marker):
        return int(marker.split("-")[1])

    def client(self, owner, round_no):
        rng = random.Random(self.seed * 1000003 + round_no * 101 + owner)
        conn = self.srv.connection()
        counter = 0
        try:
            while True:
                counter += 1
                what, params, ctx = self.choose(owner, rng, "%d_%d" % (round_no, counter))
                try:
                    r = self.srv.call(what, conn=conn, **params)
                except NETWORK_ERRORS as e:
                    if not self.killed.is_set():
                        self.errors.append("%s failed before the kill: %r" % (what, e))
                    else:
                        self.uncertain.append((what, ctx))
                    return
                if r.status != 200:
                    self.errors.append("%s: %r" % (what, r))
                    return
                self.apply(what, ctx, r)
        except Exception as e:  # a bug in the test itself must fail it, not vanish with the thread
            self.errors.append("client %d: %r" % (owner, e))
        finally:
            conn.close()

    # -- checks through the API ------------------------------------------------------------
    def call(self, conn, action, **params):
        r = self.srv.call(action, conn=conn, **params)
        return r

    def resolve(self, conn, db, what, ctx):
        """Decides whether the write in flight at the kill happened; it must be all or nothing."""
        if what == "CreateKey":
            row = db.execute("SELECT key_id, primary_version FROM keys WHERE description = ?",
                             (ctx,)).fetchone()
            if row is not None:
                self.keys[row[0]] = Key(row[0], self.owner_of_marker(ctx), row[1])
                self.touched_keys.add(row[0])
        elif what == "CreateAlias":
            name, key = ctx
            r = self.call(conn, "DescribeKey", KeyId=name)
            if r.status == 200:
                self.assertEqual(r.json["KeyMetadata"]["KeyId"], key.key_id, name)
                key.aliases.add(name)
                self.aliases[name] = key.key_id
            else:
                self.assertEqual(r.status, 404, r)
            self.touched_keys.add(key.key_id)
        elif what == "CreateKeyVersion":
            r = self.call(conn, "DescribeKey", KeyId=ctx.key_id)
            self.assertEqual(r.status, 200, r)
            primary = r.json["KeyMetadata"]["PrimaryKeyVersion"]
            if primary != ctx.primary:
                self.assertNotIn(primary, ctx.versions, "an old version became primary again")
                ctx.versions.append(primary)
                ctx.primary = primary
            self.touched_keys.add(ctx.key_id)
        elif what == "TagResource":
            key, tag_key, value = ctx
            got = self.tags_of(conn, key.key_id).get(tag_key)
            self.assertIn(got, (key.tags.get(tag_key), value), "tag %s of %s" % (tag_key, key.key_id))
            if got is not None:
                key.tags[tag_key] = got
            self.touched_keys.add(key.key_id)
        elif what == "PutSecretValue":
            secret, vid, data = ctx
            r = self.call(conn, "GetSecretValue", SecretName=secret.name, VersionId=vid)
            if r.status == 200:
                self.assertEqual(r.json["SecretData"], data)
                secret.versions.append((vid, data))
            else:
                self.assertEqual(r.status, 404, r)
            self.touched_secrets.add(secret.name)
        elif what == "ScheduleKeyDeletion":
            r = self.call(conn, "DescribeKey", KeyId=ctx.key_id)
            self.assertEqual(r.status, 200, r)
            state = r.json["KeyMetadata"]["KeyState"]
            self.assertIn(state, ("Enabled", "PendingDeletion"))
            ctx.pending = state == "PendingDeletion"
            self.touched_keys.add(ctx.key_id)

    def tags_of(self, conn, key_id):
        r = self.call(conn, "ListResourceTags", KeyId=key_id)
        self.assertEqual(r.status, 200, r)
        return {t["TagKey"]: t["TagValue"] for t in r.json["Tags"]["Tag"]}

    def check_key(self, conn, key):
        r = self.call(conn, "DescribeKey", KeyId=key.key_id)
        self.assertEqual(r.status, 200, "acknowledged key %s lost: %r" % (key.key_id, r))
        md = r.json["KeyMetadata"]
        self.assertEqual(md["KeyState"], "PendingDeletion" if key.pending else "Enabled", key.key_id)
        self.assertEqual(md["PrimaryKeyVersion"], key.primary, "primary version of %s" % key.key_id)
        if not key.pending:
            data = os.urandom(24)
            r = self.call(conn, "Encrypt", KeyId=key.key_id, Plaintext=b64(data))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["KeyVersionId"], key.primary)
            r = self.call(conn, "Decrypt", CiphertextBlob=r.json["CiphertextBlob"])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(unb64(r.json["Plaintext"]), data)
        self.assertEqual(self.tags_of(conn, key.key_id), key.tags, "tags of %s" % key.key_id)
        for name in key.aliases:
            r = self.call(conn, "DescribeKey", KeyId=name)
            self.assertEqual(r.status, 200, "acknowledged alias %s lost: %r" % (name, r))
            self.assertEqual(r.json["KeyMetadata"]["KeyId"], key.key_id, name)

    def check_secret(self, conn, secret):
        if not secret.versions:
            return
        r = self.call(conn, "GetSecretValue", SecretName=secret.name)
        self.assertEqual(r.status, 200, r)
        vid, data = secret.current()
        self.assertEqual(r.json["VersionId"], vid, "ACSCurrent of %s" % secret.name)
        self.assertEqual(r.json["SecretData"], data)
        self.assertIn("ACSCurrent", r.json["VersionStages"]["VersionStage"])
        if len(secret.versions) > 1:
            r = self.call(conn, "GetSecretValue", SecretName=secret.name, VersionStage="ACSPrevious")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["VersionId"], secret.versions[-2][0], "ACSPrevious of %s" % secret.name)
        for vid, data in secret.versions[-SECRET_VERSIONS_KEPT:-1]:
            r = self.call(conn, "GetSecretValue", SecretName=secret.name, VersionId=vid)
            self.assertEqual(r.status, 200, "acknowledged version %s of %s lost: %r" % (vid, secret.name, r))
            self.assertEqual(r.json["SecretData"], data)

    # -- checks on the database file -------------------------------------------------------
    def open_db(self):
        path = os.path.join(self.srv.data_dir, "kmsd.db")
        return sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)

    def check_db(self, db, full=False):
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        self.assertEqual(db.execute("PRAGMA foreign_key_check").fetchall(), [])
        # Every key has its primary version (no key without a version, no dangling primary).
        self.assertEqual(db.execute(
            "SELECT key_id FROM keys k WHERE NOT EXISTS (SELECT 1 FROM key_versions v "
            "WHERE v.version_id = k.primary_version AND v.key_id = k.key_id)").fetchall(), [])
        # Every secret has a version labelled ACSCurrent.
        self.assertEqual(db.execute(
            "SELECT secret_name FROM secrets s WHERE NOT EXISTS (SELECT 1 FROM secret_stages t "
            "WHERE t.secret_name = s.secret_name AND t.stage = 'ACSCurrent')").fetchall(), [])
        # No tag on a key or secret that does not exist.
        self.assertEqual(db.execute(
            "SELECT resource_id FROM tags WHERE (resource_type = 'key' AND resource_id NOT IN "
            "(SELECT key_id FROM keys)) OR (resource_type = 'secret' AND resource_id NOT IN "
            "(SELECT secret_name FROM secrets))").fetchall(), [])
        # Every version's material unwraps under the master key, bound to its key and version.
        with open(os.path.join(self.srv.data_dir, "master.key"), "rb") as f:
            master = f.read()
        for key_id, vid, wrapped in db.execute("SELECT key_id, version_id, material FROM key_versions"):
            if vid in self.unwrapped and not full:
                continue
            self.assertIsNotNone(wrapped, vid)
            self.assertEqual(wrapped[0], 1)
            plain = gcm_open(master, wrapped[1:13], (key_id + vid).encode(), wrapped[13:-16], wrapped[-16:])
            self.assertIsNotNone(plain, "material of %s does not unwrap" % vid)
            self.assertEqual(len(plain), 32)
            self.unwrapped.add(vid)
        # Every acknowledged write is there (cheap cumulative check, every round).
        rows = {r[0]: r[1:] for r in db.execute("SELECT key_id, primary_version, state FROM keys")}
        versions = {r[0]: r[1] for r in db.execute("SELECT version_id, key_id FROM key_versions")}
        for key in self.keys.values():
            self.assertIn(key.key_id, rows, "acknowledged key lost")
            self.assertEqual(rows[key.key_id][0], key.primary)
            self.assertEqual(rows[key.key_id][1] == 2, key.pending, key.key_id)  # 2: PendingDeletion
            for vid in key.versions:
                self.assertEqual(versions.get(vid), key.key_id, "acknowledged version lost")
        aliases = dict(db.execute("SELECT alias_name, key_id FROM aliases"))
        for name, key_id in self.aliases.items():
            self.assertEqual(aliases.get(name), key_id, "acknowledged alias lost")
        tags = {(r[0], r[1]): r[2] for r in db.execute(
            "SELECT resource_id, tag_key, tag_value FROM tags WHERE resource_type = 'key'")}
        for key in self.keys.values():
            for k, v in key.tags.items():
                self.assertEqual(tags.get((key.key_id, k)), v, "acknowledged tag lost")
        stored = {(r[0], r[1]) for r in db.execute("SELECT secret_name, version_id FROM secret_versions")}
        current = dict(db.execute("SELECT secret_name, version_id FROM secret_stages "
                                  "WHERE stage = 'ACSCurrent'"))
        previous = dict(db.execute("SELECT secret_name, version_id FROM secret_stages "
                                   "WHERE stage = 'ACSPrevious'"))
        for secret in self.secrets.values():
            for vid, _ in secret.versions[-SECRET_VERSIONS_KEPT:]:
                self.assertIn((secret.name, vid), stored, "acknowledged secret version lost")
            if secret.versions:
                self.assertEqual(current.get(secret.name), secret.current()[0], "ACSCurrent moved")
            if len(secret.versions) > 1:
                self.assertEqual(previous.get(secret.name), secret.versions[-2][0], "ACSPrevious moved")

    # -- the test ---------------------------------------------------------------------------
    @unittest.skipIf(LIB is None, "libcrypto not loadable through ctypes")
    def test_sigkill_under_concurrent_writes(self):
        conn = self.srv.connection()
        for owner in range(THREADS):
            for i in range(SECRETS_PER_THREAD):
                name = "crash-secret-%d-%d" % (owner, i)
                vid, data = "v0", "initial-%d-%d" % (owner, i)
                r = self.srv.call("CreateSecret", conn=conn, SecretName=name, VersionId=vid, SecretData=data)
                self.assertEqual(r.status, 200, r)
                self.secrets[name] = Secret(name, owner)
                self.secrets[name].versions.append((vid, data))
        conn.close()
        started = time.time()
        for round_no in range(ROUNDS):
            self.touched_keys, self.touched_secrets = set(), set()
            self.uncertain = []
            self.killed = threading.Event()
            clients = [threading.Thread(target=self.client, args=(owner, round_no))
                       for owner in range(THREADS)]
            for t in clients:
                t.start()
            time.sleep(self.rng.uniform(0.05, 1.0))
            self.killed.set()
            self.srv.proc.send_signal(signal.SIGKILL)
            for t in clients:
                t.join(60)
                self.assertFalse(t.is_alive(), "a client hangs after the kill")
            self.assertEqual(self.srv.stop(), -signal.SIGKILL)
            if self.errors:
                self.fail_with_seed("round %d: %s" % (round_no, self.errors[:3]))
            self.srv.start()
            self.uncertain_total += len(self.uncertain)
            db = self.open_db()
            conn = self.srv.connection()
            try:
                for what, ctx in self.uncertain:
                    self.resolve(conn, db, what, ctx)
                for key_id in sorted(self.touched_keys):
                    self.check_key(conn, self.keys[key_id])
                for name in sorted(self.touched_secrets):
                    self.check_secret(conn, self.secrets[name])
                db.rollback()
                self.check_db(db)
            except AssertionError as e:
                self.fail_with_seed("round %d: %s" % (round_no, e))
            finally:
                conn.close()
                db.close()
        # Last: everything ever acknowledged, through the API, and every material again.
        conn = self.srv.connection()
        db = self.open_db()
        try:
            for key in self.keys.values():
                self.check_key(conn, key)
            for secret in self.secrets.values():
                self.check_secret(conn, secret)
            self.check_db(db, full=True)
        except AssertionError as e:
            self.fail_with_seed("final check: %s" % e)
        finally:
            conn.close()
            db.close()
        self.assertGreater(self.acked, ROUNDS * 5, "too little load to prove anything")
        print("\ncrash consistency: %d rounds, %d acknowledged writes, %d in flight at a kill, "
              "%d keys, %.0f s (seed %d)" % (ROUNDS, self.acked, self.uncertain_total,
                                            len(self.keys), time.time() - started, self.seed))


if __name__ == "__main__":
    unittest.main()
