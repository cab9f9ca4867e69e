// Wing & Gong linearizability search over per-key KV sub-histories, with Lowe's cache.
#include "sim/linearizability.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_set>

namespace vigil::sim {
namespace {

// The sequential model's state for one key: 0 = absent, otherwise an interned value id.
using State = uint32_t;

struct Interner {
  std::map<std::string, State> ids;
  State id(const std::optional<std::string>& v) {
    if (!v) return 0;
    auto [it, inserted] = ids.emplace(*v, static_cast<State>(ids.size() + 1));
    return it->second;
  }
};

// An op with its value arguments and outputs already interned.
struct ModelOp {
  const KvOp* op;
  State value = 0;     // put / cas new value
  State expected = 0;  // cas
  State read = 0;      // get output
};

// Applies `op` to `s`; false if the op's recorded output is impossible in state `s`.
// Ops with unknown outcome accept any output, so only their effect matters.
bool model_step(State s, const ModelOp& m, State* out) {
  const KvOp& op = *m.op;
  switch (op.kind) {
    case KvOpKind::kPut:
      *out = m.value;
      return true;
    case KvOpKind::kGet:
      *out = s;
      return !op.outcome_known() || s == m.read;
    case KvOpKind::kCas: {
      const bool matches = s == m.expected;
      *out = matches ? m.value : s;
      return !op.outcome_known() || op.cas_ok == matches;
    }
    case KvOpKind::kDelete:
      *out = 0;
      return true;
    case KvOpKind::kCasDelete: {
      const bool matches = s == m.expected;
      *out = matches ? 0 : s;
      return !op.outcome_known() || op.cas_ok == matches;
    }
  }
  return false;
}

// Visited configurations: the set of linearized ops and the model state they produced.
// A configuration seen before leads to the same sub-search, so it is pruned (Lowe 2017).
// Only membership is asked, so the unordered container's order never reaches a result.
struct Config {
  std::vector<uint64_t> bits;
  State state;
  bool operator==(const Config&) const = default;
};
struct ConfigHash {
  size_t operator()(const Config& c) const {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ c.state;
    for (uint64_t w : c.bits) {
      h ^= w + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    }
    return static_cast<size_t>(h);
  }
};

struct KeyResult {
  bool ok = true;
  bool out_of_budget = false;
  std::vector<size_t> best_prefix;  // indices into the key's ops, in linearization order
};

// The search itself. Entries are the calls and returns of every op in time order, kept in
// a doubly linked list from which a linearized op's call and return are lifted (and put
// back on backtracking, dancing-links style).
KeyResult search_key(const std::vector<ModelOp>& ops, uint64_t* budget) {
  KeyResult result;
  const size_t n = ops.size();
  if (n == 0) return result;

  struct Ev {
    uint64_t time;
    bool is_return;
    size_t op;
  };
  std::vector<Ev> evs;
  evs.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    evs.push_back({ops[i].op->call_time, false, i});
    evs.push_back({ops[i].op->return_time, true, i});
  }
  // Calls sort before returns at the same time: equal times mean "concurrent".
  std::sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.is_return != b.is_return) return !a.is_return;
    return a.op < b.op;
  });

  // Node 0 is the head sentinel; entry k of evs is node k + 1. -1 ends the list.
  const int count = static_cast<int>(2 * n + 1);
  std::vector<int> next(count), prev(count), match(count, 0);
  std::vector<size_t> call_node(n), ret_node(n);
  for (int k = 0; k < count; ++k) {
    next[k] = k + 1 < count ? k + 1 : -1;
    prev[k] = k - 1;
  }
  for (size_t k = 0; k < evs.size(); ++k) {
    (evs[k].is_return ? ret_node : call_node)[evs[k].op] = k + 1;
  }
  for (size_t i = 0; i < n; ++i) {
    match[call_node[i]] = static_cast<int>(ret_node[i]);
  }
  auto unlink = [&](int k) {
    next[prev[k]] = next[k];
    if (next[k] >= 0) prev[next[k]] = prev[k];
  };
  auto relink = [&](int k) {
    next[prev[k]] = k;
    if (next[k] >= 0) prev[next[k]] = k;
  };

  std::unordered_set<Config, ConfigHash> seen;
  std::vector<uint64_t> bits((n + 63) / 64, 0);
  State state = 0;
  struct Frame {
    int node;
    State state_before;
  };
  std::vector<Frame> stack;
  int cur = next[0];
  while (next[0] >= 0) {
    if (*budget == 0) {
      result.ok = false;
      result.out_of_budget = true;
      return result;
    }
    --*budget;
    const Ev& ev = evs[cur - 1];
    if (!ev.is_return) {
      State after;
      if (model_step(state, ops[ev.op], &after)) {
        std::vector<uint64_t> nbits = bits;
        nbits[ev.op / 64] |= uint64_t{1} << (ev.op % 64);
        if (seen.insert(Config{nbits, after}).second) {
          stack.push_back({cur, state});
          bits = std::move(nbits);
          state = after;
          unlink(cur);
          unlink(match[cur]);
          if (stack.size() > result.best_prefix.size()) {
            result.best_prefix.clear();
            for (const Frame& f : stack) result.best_prefix.push_back(evs[f.node - 1].op);
          }
          cur = next[0];
          continue;
        }
      }
      cur = next[cur];
    } else {
      // An op returned before anything in the current prefix could explain it: undo the
      // most recent choice and try the next candidate after it.
      if (stack.empty()) {
        result.ok = false;
        return result;
      }
      Frame f = stack.back();
      stack.pop_back();
      const size_t op = evs[f.node - 1].op;
      bits[op / 64] &= ~(uint64_t{1} << (op % 64));
      state = f.state_before;
      relink(match[f.node]);
      relink(f.node);
      cur = next[f.node];
    }
  }
  result.best_prefix.clear();
  return result;
}

std::string opt_str(const std::optional<std::string>& v) { return v ? *v : "<absent>"; }

std::string time_str(uint64_t t) {
  return t == kUnknownReturn ? std::string("?") : std::to_string(t);
}

}  // namespace

std::string describe_op(const KvOp& op) {
  std::string s = "op" + std::to_string(op.id) + " c" + std::to_string(op.client) + " [" +
                  std::to_string(op.call_time) + "," + time_str(op.return_time) +
                  (op.output_unknown ? "?" : "") + "] ";
  switch (op.kind) {
    case KvOpKind::kPut:
      s += "put " + op.key + "=" + op.value;
      break;
    case KvOpKind::kGet:
      s += "get " + op.key + " -> " + (op.outcome_known() ? opt_str(op.read_value) : "?");
      break;
    case KvOpKind::kCas:
      s += "cas " + op.key + " " + opt_str(op.expected) + "->" + op.value + " -> " +
           (op.outcome_known() ? (op.cas_ok ? "ok" : "failed") : "?");
      break;
    case KvOpKind::kDelete:
      s += "del " + op.key;
      break;
    case KvOpKind::kCasDelete:
      s += "casdel " + op.key + " " + opt_str(op.expected) + " -> " +
           (op.outcome_known() ? (op.cas_ok ? "ok" : "failed") : "?");
      break;
  }
  return s;
}

LinearizabilityResult check_kv_linearizable(const std::vector<KvOp>& history,
                                            uint64_t max_search_steps) {
  LinearizabilityResult result;
  // A get whose answer never arrived changes nothing and shows nothing: drop it.
  std::map<std::string, std::vector<const KvOp*>> by_key;
  for (const KvOp& op : history) {
    if (op.kind == KvOpKind::kGet && !op.outcome_known()) continue;
    by_key[op.key].push_back(&op);
  }
  uint64_t budget = max_search_steps;
  for (const auto& [key, key_ops] : by_key) {
    Interner interner;
    std::vector<ModelOp> ops;
    ops.reserve(key_ops.size());
    for (const KvOp* op : key_ops) {
      ModelOp m{op};
      if (op->kind == KvOpKind::kPut || op->kind == KvOpKind::kCas) {
        m.value = interner.id(op->value);
      }
      if (op->kind == KvOpKind::kCas || op->kind == KvOpKind::kCasDelete) {
        m.expected = interner.id(op->expected);
      }
      if (op->kind == KvOpKind::kGet) m.read = interner.id(op->read_value);
      ops.push_back(m);
    }
    const uint64_t before = budget;
    KeyResult kr = search_key(ops, &budget);
    result.search_steps += before - budget;
    if (kr.ok) continue;
    result.verdict = kr.out_of_budget ? LinearizabilityResult::Verdict::kInconclusive
                                      : LinearizabilityResult::Verdict::kNotLinearizable;
    result.key = key;
    std::string d = "history of key " + key + " (" + std::to_string(ops.size()) + " ops):\n";
    for (const ModelOp& m : ops) d += "  " + describe_op(*m.op) + "\n";
    if (!kr.out_of_budget) {
      d += "longest linearizable prefix (" + std::to_string(kr.best_prefix.size()) + " ops):\n";
      for (size_t i : kr.best_prefix) d += "  " + describe_op(*ops[i].op) + "\n";
    }
    result.details = std::move(d);
    return result;
  }
  return result;
}

}  // namespace vigil::sim
