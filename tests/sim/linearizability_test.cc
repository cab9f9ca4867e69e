// Unit tests for the KV linearizability checker: known good and known bad histories.
#include "sim/linearizability.h"

#include <gtest/gtest.h>

#include <map>

#include "base/rng.h"

namespace vigil::sim {
namespace {

// Builds histories tersely; times are explicit so each test shows its real-time order.
class History {
 public:
  History& put(std::string key, std::string value, uint64_t call, uint64_t ret) {
    KvOp op = base(KvOpKind::kPut, std::move(key), call, ret);
    op.value = std::move(value);
    ops_.push_back(op);
    return *this;
  }
  History& get(std::string key, std::optional<std::string> read, uint64_t call, uint64_t ret) {
    KvOp op = base(KvOpKind::kGet, std::move(key), call, ret);
    op.read_value = std::move(read);
    ops_.push_back(op);
    return *this;
  }
  History& cas(std::string key, std::optional<std::string> expected, std::string value, bool ok,
               uint64_t call, uint64_t ret) {
    KvOp op = base(KvOpKind::kCas, std::move(key), call, ret);
    op.expected = std::move(expected);
    op.value = std::move(value);
    op.cas_ok = ok;
    ops_.push_back(op);
    return *this;
  }
  History& del(std::string key, uint64_t call, uint64_t ret) {
    ops_.push_back(base(KvOpKind::kDelete, std::move(key), call, ret));
    return *this;
  }
  History& casdel(std::string key, std::string expected, bool ok, uint64_t call, uint64_t ret) {
    KvOp op = base(KvOpKind::kCasDelete, std::move(key), call, ret);
    op.expected = std::move(expected);
    op.cas_ok = ok;
    ops_.push_back(op);
    return *this;
  }
  const std::vector<KvOp>& ops() const { return ops_; }

 private:
  KvOp base(KvOpKind kind, std::string key, uint64_t call, uint64_t ret) {
    KvOp op;
    op.id = ops_.size();
    op.client = ops_.size();
    op.kind = kind;
    op.key = std::move(key);
    op.call_time = call;
    op.return_time = ret;
    return op;
  }
  std::vector<KvOp> ops_;
};

bool linearizable(const History& h) {
  LinearizabilityResult r = check_kv_linearizable(h.ops());
  EXPECT_NE(r.verdict, LinearizabilityResult::Verdict::kInconclusive);
  return r.ok();
}

TEST(Linearizability, EmptyHistoryIsLinearizable) { EXPECT_TRUE(linearizable(History())); }

TEST(Linearizability, DeleteMakesTheKeyAbsent) {
  EXPECT_TRUE(linearizable(History().put("k", "a", 1, 2).del("k", 3, 4).get("k", {}, 5, 6)));
  // A read after the delete returned may not see the old value.
  EXPECT_FALSE(linearizable(History().put("k", "a", 1, 2).del("k", 3, 4).get("k", "a", 5, 6)));
  // Concurrent with the delete: either is fine.
  EXPECT_TRUE(linearizable(History().put("k", "a", 1, 2).del("k", 3, 6).get("k", "a", 4, 5)));
  // Create-if-absent succeeds after a delete.
  EXPECT_TRUE(linearizable(
      History().put("k", "a", 1, 2).del("k", 3, 4).cas("k", std::nullopt, "b", true, 5, 6)));
  EXPECT_FALSE(linearizable(
      History().put("k", "a", 1, 2).del("k", 3, 4).cas("k", std::nullopt, "b", false, 5, 6)));
}

TEST(Linearizability, CasDeleteDeletesOnlyOnMatch) {
  EXPECT_TRUE(linearizable(
      History().put("k", "a", 1, 2).casdel("k", "b", false, 3, 4).get("k", "a", 5, 6)));
  EXPECT_TRUE(
      linearizable(History().put("k", "a", 1, 2).casdel("k", "a", true, 3, 4).get("k", {}, 5, 6)));
  EXPECT_FALSE(
      linearizable(History().put("k", "a", 1, 2).casdel("k", "a", true, 3, 4).get("k", "a", 5, 6)));
  EXPECT_FALSE(linearizable(History().put("k", "a", 1, 2).casdel("k", "a", false, 3, 4)));
}

TEST(Linearizability, SequentialPutGet) {
  EXPECT_TRUE(linearizable(History().put("x", "1", 1, 2).get("x", "1", 3, 4)));
}

TEST(Linearizability, ReadOfAbsentKeyBeforeAnyWrite) {
  EXPECT_TRUE(linearizable(History().get("x", std::nullopt, 1, 2).put("x", "1", 3, 4)));
}

TEST(Linearizability, StaleReadIsCaught) {
  EXPECT_FALSE(linearizable(History().put("x", "1", 1, 2).put("x", "2", 3, 4).get("x", "1", 5, 6)));
}

TEST(Linearizability, LostWriteIsCaught) {
  EXPECT_FALSE(linearizable(History().put("x", "1", 1, 2).get("x", std::nullopt, 3, 4)));
}

TEST(Linearizability, ReadOfNeverWrittenValueIsCaught) {
  EXPECT_FALSE(linearizable(History().put("x", "1", 1, 2).get("x", "7", 3, 4)));
}

TEST(Linearizability, ConcurrentPutAndGetEitherOrder) {
  // The get overlaps the put: it may see the old or the new value.
  EXPECT_TRUE(linearizable(History().put("x", "1", 1, 2).put("x", "2", 3, 6).get("x", "1", 4, 5)));
  EXPECT_TRUE(linearizable(History().put("x", "1", 1, 2).put("x", "2", 3, 6).get("x", "2", 4, 5)));
}

TEST(Linearizability, ConcurrentPutsEitherOrderButThenStable) {
  // Two overlapping puts may land in either order, but once both returned the value is fixed.
  EXPECT_TRUE(linearizable(History().put("x", "a", 1, 4).put("x", "b", 2, 3).get("x", "a", 5, 6)));
  EXPECT_TRUE(linearizable(History().put("x", "a", 1, 4).put("x", "b", 2, 3).get("x", "b", 5, 6)));
  EXPECT_FALSE(linearizable(
      History().put("x", "a", 1, 4).put("x", "b", 2, 3).get("x", "a", 5, 6).get("x", "b", 7, 8)));
}

TEST(Linearizability, ReadsMustNotGoBackInTime) {
  // Two concurrent reads during a put are fine either way, but a read that starts after
  // another read returned the new value must not see the old one.
  EXPECT_TRUE(linearizable(
      History().put("x", "1", 1, 2).put("x", "2", 3, 10).get("x", "2", 4, 6).get("x", "1", 5, 7)));
  EXPECT_FALSE(linearizable(
      History().put("x", "1", 1, 2).put("x", "2", 3, 10).get("x", "2", 4, 5).get("x", "1", 6, 7)));
}

TEST(Linearizability, UnknownOutcomeMayTakeEffectLateOrNever) {
  // The put timed out: a later read may see it, or not, and may see it appear late.
  EXPECT_TRUE(linearizable(History().put("x", "1", 1, kUnknownReturn).get("x", "1", 5, 6)));
  EXPECT_TRUE(
      linearizable(History().put("x", "1", 1, kUnknownReturn).get("x", std::nullopt, 5, 6)));
  EXPECT_TRUE(linearizable(
      History().put("x", "1", 1, kUnknownReturn).get("x", std::nullopt, 5, 6).get("x", "1", 7, 8)));
  // But once seen, it cannot vanish again.
  EXPECT_FALSE(linearizable(
      History().put("x", "1", 1, kUnknownReturn).get("x", "1", 5, 6).get("x", std::nullopt, 7, 8)));
  // Nor can it take effect before it was called.
  EXPECT_FALSE(linearizable(History().get("x", "1", 1, 2).put("x", "1", 3, kUnknownReturn)));
}

TEST(Linearizability, BoundedUnknownOutputMustTakeEffectByItsReturn) {
  // The put's output is unknown but it took effect by time 4: a read after that must see it.
  History h;
  h.put("x", "1", 1, 4);
  std::vector<KvOp> ops = h.ops();
  ops[0].output_unknown = true;
  KvOp get;
  get.id = 1;
  get.kind = KvOpKind::kGet;
  get.key = "x";
  get.call_time = 5;
  get.return_time = 6;
  ops.push_back(get);  // reads absent: impossible
  EXPECT_FALSE(check_kv_linearizable(ops).ok());
  ops.back().read_value = "1";
  EXPECT_TRUE(check_kv_linearizable(ops).ok());
}

TEST(Linearizability, UnknownGetIsIgnored) {
  EXPECT_TRUE(linearizable(History().put("x", "1", 1, 2).get("x", "zzz", 3, kUnknownReturn)));
}

TEST(Linearizability, CompareAndSwap) {
  EXPECT_TRUE(linearizable(
      History().put("x", "1", 1, 2).cas("x", "1", "2", true, 3, 4).get("x", "2", 5, 6)));
  EXPECT_TRUE(linearizable(History().cas("x", std::nullopt, "1", true, 1, 2).get("x", "1", 3, 4)));
  // A cas that succeeded although the value did not match.
  EXPECT_FALSE(linearizable(History().put("x", "1", 1, 2).cas("x", "9", "2", true, 3, 4)));
  // A cas that failed although the value matched.
  EXPECT_FALSE(linearizable(History().put("x", "1", 1, 2).cas("x", "1", "2", false, 3, 4)));
  // Two successful cas from the same expected value cannot both win.
  EXPECT_FALSE(linearizable(
      History().put("x", "0", 1, 2).cas("x", "0", "a", true, 3, 6).cas("x", "0", "b", true, 4, 5)));
  // An unknown cas may explain a later read of its value.
  EXPECT_TRUE(linearizable(History()
                               .put("x", "0", 1, 2)
                               .cas("x", "0", "a", false, 3, kUnknownReturn)
                               .get("x", "a", 5, 6)));
}

TEST(Linearizability, KeysAreIndependent) {
  EXPECT_TRUE(linearizable(
      History().put("x", "1", 1, 10).put("y", "2", 2, 3).get("y", "2", 4, 5).get("x", "1", 6, 7)));
  EXPECT_FALSE(
      linearizable(History().put("x", "1", 1, 2).put("y", "2", 3, 4).get("y", std::nullopt, 5, 6)));
}

TEST(Linearizability, ReportNamesTheKeyAndPrefix) {
  History h;
  h.put("a", "1", 1, 2).put("b", "1", 1, 2).get("b", "5", 3, 4);
  LinearizabilityResult r = check_kv_linearizable(h.ops());
  EXPECT_EQ(r.verdict, LinearizabilityResult::Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "b");
  EXPECT_NE(r.details.find("get b -> 5"), std::string::npos) << r.details;
}

TEST(Linearizability, BudgetExhaustionIsInconclusive) {
  History h;
  for (uint64_t i = 0; i < 30; ++i) h.put("x", std::to_string(i), i, kUnknownReturn);
  h.get("x", "never", 100, 101);
  LinearizabilityResult r = check_kv_linearizable(h.ops(), 1000);
  EXPECT_EQ(r.verdict, LinearizabilityResult::Verdict::kInconclusive);
}

// Property test: histories produced by a real sequential execution, with each op's call
// and return stretched around its linearization point, are always linearizable; the same
// history with one get answer corrupted to a never-written value never is.
TEST(Linearizability, RandomConcurrentHistoriesFromSequentialModel) {
  SplitMix64 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::map<std::string, std::string> model;
    std::vector<KvOp> ops;
    uint64_t t = 100;
    const int n = 40 + static_cast<int>(rng.uniform(0, 40));
    for (int i = 0; i < n; ++i) {
      t += 10;  // linearization point of op i
      KvOp op;
      op.id = static_cast<uint64_t>(i);
      op.key = std::string(1, static_cast<char>('a' + rng.uniform(0, 2)));
      op.call_time = t - rng.uniform(1, 35);
      op.return_time = rng.chance(0.1) ? kUnknownReturn : t + rng.uniform(1, 35);
      auto it = model.find(op.key);
      std::optional<std::string> cur;
      if (it != model.end()) cur = it->second;
      switch (rng.uniform(0, 2)) {
        case 0:
          op.kind = KvOpKind::kPut;
          op.value = "v" + std::to_string(i);
          model[op.key] = op.value;
          break;
        case 1:
          op.kind = KvOpKind::kGet;
          op.read_value = cur;
          break;
        default:
          op.kind = KvOpKind::kCas;
          op.expected = rng.chance(0.5) ? cur : std::optional<std::string>("v0");
          op.value = "v" + std::to_string(i);
          op.cas_ok = op.expected == cur;
          if (op.cas_ok) model[op.key] = op.value;
          break;
      }
      ops.push_back(op);
    }
    LinearizabilityResult good = check_kv_linearizable(ops);
    ASSERT_TRUE(good.ok()) << "round " << round << "\n" << good.details;
    bool corrupted = false;
    for (KvOp& op : ops) {
      if (op.kind == KvOpKind::kGet && op.outcome_known()) {
        op.read_value = "never-written";
        corrupted = true;
        break;
      }
    }
    if (!corrupted) continue;
    LinearizabilityResult bad = check_kv_linearizable(ops);
    EXPECT_EQ(bad.verdict, LinearizabilityResult::Verdict::kNotLinearizable) << "round " << round;
  }
}

}  // namespace
}  // namespace vigil::sim
