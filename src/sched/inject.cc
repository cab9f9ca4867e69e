// inject.txt events applied to a snapshot.
#include "sched/inject.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <vector>

namespace vigil::sched {
namespace {

using cluster::ClusterSnapshot;
using cluster::NodeState;

std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<int64_t> to_int(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

cluster::Node* find_node(ClusterSnapshot& s, const std::string& name) {
  for (auto& n : s.nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

bool has_resource(const ClusterSnapshot& s, const std::string& id) {
  for (const auto& r : s.resources) {
    if (r.id == id) return true;
  }
  return false;
}

bool has_id(const ClusterSnapshot& s, const std::string& id) {
  if (has_resource(s, id)) return true;
  for (const auto& g : s.groups) {
    if (g.id == id) return true;
  }
  for (const auto& c : s.clones) {
    if (c.id == id) return true;
  }
  return false;
}

void stop_everything_on(ClusterSnapshot& s, const std::string& node) {
  for (auto& [rid, per] : s.status) {
    auto it = per.find(node);
    if (it != per.end()) {
      it->second.running = false;
      it->second.failed = false;
    }
  }
}

Status apply_one(const std::vector<std::string>& w, ClusterSnapshot& s) {
  const std::string& ev = w[0];
  auto need = [&](size_t n) -> Status {
    if (w.size() != n + 1) {
      return err(Errc::kInvalidArgument, ev + ": expected " + std::to_string(n) +
                                             " argument(s), got " + std::to_string(w.size() - 1));
    }
    return Status();
  };
  auto node_arg = [&](const std::string& name) -> Result<cluster::Node*> {
    cluster::Node* n = find_node(s, name);
    if (n == nullptr) return err(Errc::kInvalidArgument, ev + ": unknown node '" + name + "'");
    return n;
  };
  static const std::pair<const char*, NodeState> kNodeEvents[] = {
      {"node-fail", NodeState::kUnclean},
      {"node-offline", NodeState::kOffline},
      {"node-online", NodeState::kOnline},
      {"node-standby", NodeState::kStandby},
      {"node-maintenance", NodeState::kMaintenance},
      {"fence-ok", NodeState::kFenced}};
  for (const auto& [name, state] : kNodeEvents) {
    if (ev != name) continue;
    RETURN_IF_ERROR(need(1));
    ASSIGN_OR_RETURN(cluster::Node * n, node_arg(w[1]));
    n->state = state;
    if (state == NodeState::kOffline || state == NodeState::kFenced) stop_everything_on(s, w[1]);
    return Status();
  }
  if (ev == "set-time") {
    RETURN_IF_ERROR(need(1));
    auto v = to_int(w[1]);
    if (!v) return err(Errc::kInvalidArgument, "set-time: bad time '" + w[1] + "'");
    s.now_ms = *v;
    return Status();
  }
  if (ev == "quorum-lost" || ev == "quorum-ok") {
    RETURN_IF_ERROR(need(0));
    s.has_quorum = ev == "quorum-ok";
    return Status();
  }
  if (ev == "op-fail") {
    if (w.size() != 2 && w.size() != 3) {
      return err(Errc::kInvalidArgument, "op-fail: expected R:OP@N [rc=X]");
    }
    const std::string& spec = w[1];
    size_t colon = spec.find(':');
    size_t at = spec.find('@');
    if (colon == std::string::npos || at == std::string::npos || at < colon) {
      return err(Errc::kInvalidArgument, "op-fail: expected R:OP@N, got '" + spec + "'");
    }
    std::string rid = spec.substr(0, colon);
    std::string op = spec.substr(colon + 1, at - colon - 1);
    std::string node = spec.substr(at + 1);
    if (!has_resource(s, rid)) {
      return err(Errc::kInvalidArgument, "op-fail: unknown resource '" + rid + "'");
    }
    ASSIGN_OR_RETURN(cluster::Node * n, node_arg(node));
    if (w.size() == 3) {
      if (w[2].rfind("rc=", 0) != 0 || !to_int(w[2].substr(3))) {
        return err(Errc::kInvalidArgument, "op-fail: expected rc=N, got '" + w[2] + "'");
      }
    }
    cluster::ResourceState& st = s.status[rid][node];
    st.last_failure_ms = s.now_ms;
    if (op == "monitor" || op == "promote" || op == "demote") {
      st.running = true;
      st.failed = true;
      st.fail_count = std::min<int64_t>(st.fail_count + 1, cluster::kInfinity);
    } else if (op == "start") {
      st.running = true;  // a failed start may have left something behind: stop it
      st.failed = true;
      st.fail_count = cluster::kInfinity;
    } else if (op == "stop") {
      st.running = true;
      st.failed = true;
      st.fail_count = cluster::kInfinity;
      n->state = NodeState::kUnclean;  // it may still run: only fencing makes it safe
    } else {
      return err(Errc::kInvalidArgument, "op-fail: unknown operation '" + op +
                                             "' (expected monitor, start, stop, promote, demote)");
    }
    return Status();
  }
  if (ev == "move" || ev == "ban") {
    RETURN_IF_ERROR(need(2));
    if (!has_id(s, w[1])) {
      return err(Errc::kInvalidArgument, ev + ": unknown resource '" + w[1] + "'");
    }
    ASSIGN_OR_RETURN(cluster::Node * n, node_arg(w[2]));
    (void)n;
    cluster::LocationConstraint c;
    c.resource = w[1];
    c.node = w[2];
    if (ev == "move") {
      c.id = "cli-move-" + w[1];
      c.score = cluster::kInfinity;
      std::erase_if(s.locations, [&](const auto& l) { return l.id == c.id; });
    } else {
      c.id = "cli-ban-" + w[1] + "-" + w[2];
      c.score = -cluster::kInfinity;
      std::erase_if(s.locations, [&](const auto& l) { return l.id == c.id; });
    }
    s.locations.push_back(std::move(c));
    return Status();
  }
  if (ev == "clear") {
    RETURN_IF_ERROR(need(1));
    std::string move = "cli-move-" + w[1];
    std::string ban = "cli-ban-" + w[1] + "-";
    std::erase_if(s.locations, [&](const auto& l) {
      return l.resource == w[1] && (l.id == move || l.id.rfind(ban, 0) == 0);
    });
    return Status();
  }
  if (ev == "cleanup") {
    if (w.size() != 2 && w.size() != 3) return err(Errc::kInvalidArgument, "cleanup: R [N]");
    auto it = s.status.find(w[1]);
    if (!has_resource(s, w[1])) {
      return err(Errc::kInvalidArgument, "cleanup: unknown resource '" + w[1] + "'");
    }
    if (it == s.status.end()) return Status();
    for (auto& [node, st] : it->second) {
      if (w.size() == 3 && node != w[2]) continue;
      st.fail_count = 0;
      st.last_failure_ms = 0;
      if (st.failed) st.running = false;  // cleanup re-probes: a failed copy counts as stopped
      st.failed = false;
    }
    return Status();
  }
  if (ev == "promotion-score") {
    RETURN_IF_ERROR(need(2));
    size_t at = w[1].find('@');
    if (at == std::string::npos) {
      return err(Errc::kInvalidArgument, "promotion-score: expected R@N, got '" + w[1] + "'");
    }
    std::string rid = w[1].substr(0, at);
    std::string node = w[1].substr(at + 1);
    if (!has_resource(s, rid)) {
      return err(Errc::kInvalidArgument, "promotion-score: unknown resource '" + rid + "'");
    }
    ASSIGN_OR_RETURN(cluster::Node * n, node_arg(node));
    (void)n;
    ASSIGN_OR_RETURN(int64_t score, cluster::parse_score(w[2]));
    s.status[rid][node].promotion_score = score;
    return Status();
  }
  if (ev == "attr") {
    RETURN_IF_ERROR(need(2));
    ASSIGN_OR_RETURN(cluster::Node * n, node_arg(w[1]));
    size_t eq = w[2].find('=');
    if (eq == std::string::npos) {
      return err(Errc::kInvalidArgument, "attr: expected KEY=VALUE, got '" + w[2] + "'");
    }
    n->attributes[w[2].substr(0, eq)] = w[2].substr(eq + 1);
    return Status();
  }
  return err(Errc::kInvalidArgument, "unknown event '" + ev + "'");
}

}  // namespace

Status apply_inject(std::string_view text, std::string_view file, ClusterSnapshot& s) {
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    size_t hash = line.find('#');
    if (hash != std::string_view::npos) line = line.substr(0, hash);
    auto words = split_words(line);
    if (words.empty()) {
      if (end == text.size()) break;
      continue;
    }
    Status st = apply_one(words, s);
    if (!st.ok()) {
      return Status(st.code(),
                    std::string(file) + ":" + std::to_string(line_no) + ": " + st.message());
    }
    if (end == text.size()) break;
  }
  return Status();
}

}  // namespace vigil::sched
