// Linearizability checker for key-value histories (Wing & Gong search with Lowe's pruning).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace vigil::sim {

// kDelete removes the key; kCas writes `value` if the key holds `expected` (nullopt =
// absent); kCasDelete removes the key if it holds `expected`.
enum class KvOpKind : uint8_t { kPut = 0, kGet = 1, kCas = 2, kDelete = 3, kCasDelete = 4 };

// Return time of an operation whose outcome the client never learned (it timed out, its
// node crashed). Such an operation may take effect at any point after its call, or never:
// a return at infinity lets the search place it anywhere after the call, and placing it
// after every other operation is the same as "never" for everything observable.
inline constexpr uint64_t kUnknownReturn = std::numeric_limits<uint64_t>::max();

// One client operation as the client saw it: when it was called, when (if ever) it
// returned, and what it returned. Times are any totally ordered clock; op A precedes op B
// iff A.return_time < B.call_time (equal times count as concurrent).
struct KvOp {
  uint64_t id = 0;      // for reports only
  uint64_t client = 0;  // for reports only
  KvOpKind kind = KvOpKind::kGet;
  std::string key;
  std::string value;                    // put: the value; cas: the new value
  std::optional<std::string> expected;  // cas, cas-delete: required value (nullopt = absent)
  uint64_t call_time = 0;
  uint64_t return_time = kUnknownReturn;
  // Outputs, meaningful only when outcome_known().
  std::optional<std::string> read_value;  // get: nullopt = key absent
  bool cas_ok = false;                    // cas, cas-delete: whether the compare held
  // The op took effect by return_time, but its output is not known (a checker that has
  // other evidence of when an op took effect sets this with a finite return_time).
  bool output_unknown = false;

  bool outcome_known() const { return !output_unknown && return_time != kUnknownReturn; }
};

struct LinearizabilityResult {
  enum class Verdict { kLinearizable, kNotLinearizable, kInconclusive };
  Verdict verdict = Verdict::kLinearizable;
  std::string key;      // the first key whose sub-history failed (or ran out of budget)
  std::string details;  // the key's history and the longest linearizable prefix found
  uint64_t search_steps = 0;
  bool ok() const { return verdict == Verdict::kLinearizable; }
};

// Checks `history` against a sequential map<string, string> where every key starts
// absent. Keys are independent (P-compositionality, Horn & Kroening 2015), so each key's
// sub-history is searched alone. The search (Wing & Gong 1993, with Lowe 2017's cache of
// visited (linearized set, state) configurations) gives up with kInconclusive after
// `max_search_steps` steps in total.
LinearizabilityResult check_kv_linearizable(const std::vector<KvOp>& history,
                                            uint64_t max_search_steps = 20'000'000);

// "put k=v", "get k -> v", "cas k v1->v2 -> ok", "del k", "casdel k v1 -> ok" for reports.
std::string describe_op(const KvOp& op);

}  // namespace vigil::sim
