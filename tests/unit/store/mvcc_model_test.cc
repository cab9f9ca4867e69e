// Property test: MvccStore against a dumb model (every key's full history in a vector) on
// random operation sequences from a seeded SplitMix64. Checks reads at every retained
// revision, errors for compacted and future ones, history replay, leases, and that a replica
// restored from a snapshot mid-way stays byte-identical.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/rng.h"
#include "store/keys.h"
#include "store/mvcc.h"

namespace vigil::store {
namespace {

// The obvious implementation: nothing is ever dropped, everything is recomputed.
class Model {
 public:
  struct Change {
    int64_t rev;
    bool deleted;
    std::string value;
    LeaseId lease;
  };

  int64_t revision = 0;
  int64_t compact = 0;
  uint64_t next_lease = 1;
  std::map<LeaseId, int64_t> leases;
  std::map<std::string, std::vector<Change>> hist;

  // The key at revision `at`, derived from its whole history.
  std::optional<KeyValue> at(const std::string& key, int64_t at_rev) const {
    auto it = hist.find(key);
    if (it == hist.end()) return std::nullopt;
    std::optional<KeyValue> kv;
    for (const Change& c : it->second) {
      if (c.rev > at_rev) break;
      if (c.deleted) {
        kv.reset();
        continue;
      }
      if (!kv) kv = KeyValue{key, "", c.rev, 0, 0, kNoLease};
      kv->value = c.value;
      kv->mod_revision = c.rev;
      kv->version += 1;
      kv->lease = c.lease;
    }
    return kv;
  }
  std::vector<KeyValue> range(const std::string& key, const std::string& end,
                              int64_t at_rev) const {
    std::vector<KeyValue> out;
    for (const auto& [k, h] : hist) {
      if (!in_range(k, key, end)) continue;
      if (auto kv = at(k, at_rev)) out.push_back(*kv);
    }
    return out;
  }
  void write(std::map<std::string, Change>& pending) {
    if (pending.empty()) return;
    ++revision;
    for (auto& [k, c] : pending) {
      c.rev = revision;
      hist[k].push_back(c);
    }
  }
  std::vector<Event> events(const std::string& key, const std::string& end, int64_t from) const {
    std::vector<Event> out;
    for (int64_t rev = from; rev <= revision; ++rev) {
      for (const auto& [k, h] : hist) {
        if (!in_range(k, key, end)) continue;
        for (const Change& c : h) {
          if (c.rev != rev) continue;
          Event e;
          if (c.deleted) {
            e.type = Event::Type::kDelete;
            e.kv.key = k;
            e.kv.mod_revision = rev;
          } else {
            e.kv = *at(k, rev);
          }
          e.prev_kv = at(k, rev - 1);
          out.push_back(e);
        }
      }
    }
    return out;
  }
};

const std::vector<std::string> kKeys = {"a", "a/1", "a/2", "a/3", "b", "b/x", "c", "d"};

std::string pick_key(Rng& rng) { return kKeys[rng.uniform(0, kKeys.size() - 1)]; }

// A random range: one key, a prefix, [from, to), or everything from a key on.
std::pair<std::string, std::string> pick_range(Rng& rng) {
  switch (rng.uniform(0, 3)) {
    case 0:
      return {pick_key(rng), ""};
    case 1: {
      std::string p = pick_key(rng).substr(0, 1);
      return {p, prefix_end(p)};
    }
    case 2: {
      std::string a = pick_key(rng);
      std::string b = pick_key(rng);
      if (a == b) return {a, ""};
      if (b < a) std::swap(a, b);
      return {a, b};
    }
    default:
      return {pick_key(rng), std::string(kRangeAll)};
  }
}

class ModelTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ModelTest, RandomOperationsMatchTheModel) {
  SplitMix64 rng(GetParam());
  MvccStore store;
  Model model;
  std::optional<MvccStore> replica;  // restored from a snapshot at some point
  uint64_t index = 0;

  auto apply = [&](RequestBody body) {
    ++index;
    Request req{NodeId(1), index, std::move(body)};
    Response r = store.apply(LogIndex(index), req);
    if (replica) {
      Response r2 = replica->apply(LogIndex(index), req);
      EXPECT_EQ(r2.events, r.events);
      EXPECT_EQ(r2.status.code(), r.status.code());
    }
    return r;
  };

  for (int step = 0; step < 600; ++step) {
    const uint64_t op = rng.uniform(0, 99);
    if (op < 35) {  // put, sometimes with a lease (maybe a missing one)
      Put p{pick_key(rng), "v" + std::to_string(rng.uniform(0, 999)), kNoLease};
      if (rng.chance(0.3)) {
        p.lease = model.leases.empty() || rng.chance(0.2)
                      ? LeaseId(1000 + rng.uniform(0, 5))
                      : std::next(model.leases.begin(),
                                  static_cast<long>(rng.uniform(0, model.leases.size() - 1)))
                            ->first;
      }
      Response r = apply(p);
      if (p.lease != kNoLease && !model.leases.contains(p.lease)) {
        ASSERT_EQ(r.status.code(), Errc::kNotFound);
        continue;
      }
      ASSERT_TRUE(r.status.ok()) << r.status.to_string();
      std::map<std::string, Model::Change> w{{p.key, {0, false, p.value, p.lease}}};
      model.write(w);
    } else if (op < 50) {  // delete a range
      auto [k, e] = pick_range(rng);
      Response r = apply(DeleteRange{k, e, true});
      ASSERT_TRUE(r.status.ok()) << r.status.to_string();
      std::map<std::string, Model::Change> w;
      for (const KeyValue& kv : model.range(k, e, model.revision)) {
        w[kv.key] = {0, true, "", kNoLease};
      }
      EXPECT_EQ(std::get<DeleteResult>(r.result).deleted, static_cast<int64_t>(w.size()));
      model.write(w);
    } else if (op < 62) {  // txn: version compare, then put + delete, else put
      const std::string ck = pick_key(rng);
      const auto cur = model.at(ck, model.revision);
      const int64_t version = cur ? cur->version : 0;
      const int64_t want = rng.chance(0.5) ? version : version + 1;
      Compare c;
      c.key = ck;
      c.target = Compare::Target::kVersion;
      c.op = Compare::Op::kEqual;
      c.number = want;
      std::string pk = pick_key(rng);
      std::string dk = pick_key(rng);
      if (dk == pk) dk = "zz";  // a key never written: keeps the branch valid
      Txn t{{c},
            {Put{pk, "t" + std::to_string(step)}, DeleteRange{dk, "", false}},
            {Put{pk, "f" + std::to_string(step)}}};
      Response r = apply(t);
      ASSERT_TRUE(r.status.ok()) << r.status.to_string();
      const bool ok = want == version;
      EXPECT_EQ(std::get<TxnResult>(r.result).succeeded, ok);
      std::map<std::string, Model::Change> w{
          {pk, {0, false, (ok ? "t" : "f") + std::to_string(step), kNoLease}}};
      if (ok && model.at(dk, model.revision)) w[dk] = {0, true, "", kNoLease};
      model.write(w);
    } else if (op < 70) {  // lease grant
      const int64_t ttl = static_cast<int64_t>(rng.uniform(1, 60));
      Response r = apply(LeaseGrant{kNoLease, ttl});
      ASSERT_TRUE(r.status.ok());
      EXPECT_EQ(std::get<LeaseGrantResult>(r.result).id, LeaseId(model.next_lease));
      model.leases[LeaseId(model.next_lease++)] = ttl;
    } else if (op < 76) {  // lease revoke (sometimes of an unknown lease)
      LeaseId id(rng.uniform(1, model.next_lease));
      Response r = apply(LeaseRevoke{id});
      if (!model.leases.contains(id)) {
        ASSERT_EQ(r.status.code(), Errc::kNotFound);
        continue;
      }
      ASSERT_TRUE(r.status.ok());
      model.leases.erase(id);
      std::map<std::string, Model::Change> w;
      for (const KeyValue& kv : model.range("", std::string(kRangeAll), model.revision)) {
        if (kv.lease == id) w[kv.key] = {0, true, "", kNoLease};
      }
      model.write(w);
    } else if (op < 80) {  // compact somewhere around the retained window
      const int64_t rev = model.compact - 1 +
                          static_cast<int64_t>(rng.uniform(0, model.revision - model.compact + 2));
      Response r = apply(Compact{rev});
      if (rev < 0) {
        ASSERT_EQ(r.status.code(), Errc::kInvalidArgument);
      } else if (rev <= model.compact || rev > model.revision) {
        ASSERT_EQ(r.status.code(), Errc::kOutOfRange) << rev;
      } else {
        ASSERT_TRUE(r.status.ok()) << r.status.to_string();
        model.compact = rev;
      }
    } else if (op < 95) {  // read at a random revision, with a random limit
      auto [k, e] = pick_range(rng);
      const int64_t rev = static_cast<int64_t>(rng.uniform(0, model.revision + 1));
      const int64_t limit = static_cast<int64_t>(rng.uniform(0, 3));
      auto got = store.range(k, e, rev, limit);
      if (rev > model.revision || (rev != 0 && rev < model.compact)) {
        ASSERT_FALSE(got.has_value());
        EXPECT_EQ(got.error().code(), Errc::kOutOfRange);
        continue;
      }
      ASSERT_TRUE(got.has_value()) << got.error().to_string();
      std::vector<KeyValue> want = model.range(k, e, rev == 0 ? model.revision : rev);
      EXPECT_EQ(got->count, static_cast<int64_t>(want.size()));
      EXPECT_EQ(got->more, limit > 0 && static_cast<int64_t>(want.size()) > limit);
      if (limit > 0 && static_cast<int64_t>(want.size()) > limit) want.resize(limit);
      EXPECT_EQ(got->kvs, want) << "seed " << GetParam() << " step " << step;
    } else if (op < 98) {  // history replay from a random retained revision
      auto [k, e] = pick_range(rng);
      const int64_t from = static_cast<int64_t>(rng.uniform(0, model.revision + 1));
      auto got = store.history(k, e, from, 0, true);
      if (from <= model.compact) {
        ASSERT_FALSE(got.has_value());
        continue;
      }
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(got->events, model.events(k, e, from)) << "seed " << GetParam();
      EXPECT_EQ(got->next_revision, std::max(from, model.revision + 1));
    } else if (!replica) {  // a replica joins from a snapshot
      replica.emplace();
      ASSERT_TRUE(replica->restore(store.serialize()).ok());
    }
    if (replica) {
      ASSERT_EQ(replica->serialize(), store.serialize()) << "step " << step;
    }
    EXPECT_EQ(store.revision(), model.revision);
  }
  // Leases agree, with their keys.
  std::vector<LeaseInfo> leases = store.leases();
  ASSERT_EQ(leases.size(), model.leases.size());
  for (const LeaseInfo& l : leases) {
    EXPECT_EQ(l.ttl_s, model.leases.at(l.id));
    std::vector<std::string> keys;
    for (const KeyValue& kv : model.range("", std::string(kRangeAll), model.revision)) {
      if (kv.lease == l.id) keys.push_back(kv.key);
    }
    EXPECT_EQ(store.lease_ttl(l.id)->keys, keys);
  }
  // Compacting everything leaves exactly the live keys.
  if (model.revision > model.compact) {
    ASSERT_TRUE(store.compact(model.revision).ok());
  }
  EXPECT_EQ(store.retained_versions_for_test(), store.key_count());
  EXPECT_EQ(store.key_count(), model.range("", std::string(kRangeAll), model.revision).size());
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelTest, ::testing::Range<uint64_t>(1, 41));

}  // namespace
}  // namespace vigil::store
