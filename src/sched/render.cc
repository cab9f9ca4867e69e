// Text renderers of a plan (summary.out, scores.out and plan.dot of the scheduler cases).
#include "sched/render.h"

#include <algorithm>
#include <map>

namespace vigil::sched {
namespace {

using cluster::ClusterSnapshot;
using cluster::Role;

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string node_line(const cluster::Node& n) {
  std::string s = "    " + pad(n.name, 8) +
                  pad(std::string(cluster::node_state_name(n.state)), 12) +
                  std::string(cluster::node_role_name(n.role));
  for (const auto& [k, v] : n.attributes) s += " " + k + "=" + v;
  for (const auto& [k, v] : n.capacity) s += " capacity." + k + "=" + std::to_string(v);
  if (n.hold_expires_ms) s += " hold_expires_ms=" + std::to_string(*n.hold_expires_ms);
  return s + "\n";
}

}  // namespace

std::string render_resources(const ClusterSnapshot& s) {
  std::map<std::string, std::string> owner;
  for (const auto& g : s.groups) {
    for (const auto& m : g.members) owner[m] = "group " + g.id;
  }
  for (const auto& c : s.clones) {
    owner[c.resource] = (c.promotable ? "promotable clone " : "clone ") + c.id;
  }
  std::map<std::string, cluster::NodeState> state;
  for (const auto& n : s.nodes) state[n.name] = n.state;
  std::vector<const cluster::Resource*> rs;
  for (const auto& r : s.resources) rs.push_back(&r);
  std::sort(rs.begin(), rs.end(), [](auto* a, auto* b) { return a->id < b->id; });
  std::string out;
  for (const auto* r : rs) {
    std::string line = "    " + pad(r->id, 10);
    auto o = owner.find(r->id);
    std::map<std::string, std::vector<std::string>> by_role;  // role → nodes
    std::vector<std::string> extra;
    auto it = s.status.find(r->id);
    if (it != s.status.end()) {
      for (const auto& [node, st] : it->second) {
        if (st.running) {
          std::string n = node;
          if (st.copies > 1) n += " x" + std::to_string(st.copies);
          auto ns = state[node];
          if (ns != cluster::NodeState::kOnline) {
            n += " (" + std::string(cluster::node_state_name(ns)) + ")";
          }
          if (st.failed) n += " (failed)";
          if (st.restart) n += " (restart requested)";
          by_role[std::string(cluster::role_name(st.role))].push_back(n);
        }
        if (st.fail_count > 0) {
          extra.push_back("fail-count " + cluster::score_str(st.fail_count) + " on " + node +
                          " at " + std::to_string(st.last_failure_ms));
        }
        if (st.promotion_score) {
          extra.push_back("promotion score " + cluster::score_str(*st.promotion_score) + " on " +
                          node);
        }
      }
    }
    std::string where;
    for (const char* role : {"promoted", "unpromoted", "started"}) {
      auto b = by_role.find(role);
      if (b == by_role.end()) continue;
      if (!where.empty()) where += "; ";
      where += std::string(role) + " on";
      for (const auto& n : b->second) where += " " + n;
    }
    if (where.empty()) where = "stopped";
    line += where;
    if (o != owner.end()) line += "  [" + o->second + "]";
    if (r->meta.target_role != cluster::TargetRole::kStarted) {
      line += "  target-role " + std::string(cluster::target_role_name(r->meta.target_role));
    }
    for (const auto& e : extra) line += "; " + e;
    out += line + "\n";
  }
  return out;
}

std::string render_summary(const ClusterSnapshot& s, const Plan& p,
                           const ClusterSnapshot& revised) {
  std::string out;
  out += "Current state (now_ms " + std::to_string(s.now_ms) + ", quorum " +
         (s.has_quorum ? "yes" : "no") + ")\n";
  out += "  Nodes:\n";
  std::vector<const cluster::Node*> nodes;
  for (const auto& n : s.nodes) nodes.push_back(&n);
  std::sort(nodes.begin(), nodes.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (const auto* n : nodes) out += node_line(*n);
  out += "  Resources:\n" + render_resources(s);
  if (!p.warnings.empty()) {
    out += "Warnings:\n";
    for (const auto& w : p.warnings) out += "  " + w + "\n";
  }
  out += "Plan:\n";
  if (p.changes.empty()) out += "  (nothing to do)\n";
  for (const auto& c : p.changes) {
    out += "  " + pad(c.verb, 9) + pad(c.resource, 10) + c.detail + "\n";
  }
  out += "Actions:\n";
  if (p.actions.empty()) out += "  (none)\n";
  for (const auto& a : p.actions) {
    std::string line = "  " + pad(std::to_string(a.id), 4) + pad(a.label(), 28);
    std::string after;
    for (int d : a.after) after += (after.empty() ? "after " : ",") + std::to_string(d);
    line += pad(after, 16) + "(" + a.reason + ")";
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  out += "Revised state:\n";
  std::vector<const cluster::Node*> rnodes;
  for (const auto& n : revised.nodes) rnodes.push_back(&n);
  std::sort(rnodes.begin(), rnodes.end(), [](auto* a, auto* b) { return a->name < b->name; });
  bool nodes_changed = false;
  for (size_t i = 0; i < rnodes.size() && i < nodes.size(); ++i) {
    if (rnodes[i]->state != nodes[i]->state) nodes_changed = true;
  }
  if (nodes_changed) {
    out += "  Nodes:\n";
    for (const auto* n : rnodes) out += node_line(*n);
  }
  out += "  Resources:\n" + render_resources(revised);
  return out;
}

std::string render_scores(const Plan& p) {
  std::string out;
  for (const auto& ex : p.explanation) {
    out += ex.unit + " (" + ex.kind + ")\n";
    for (const auto& ns : ex.scores) {
      std::string line = "  " + ns.node + ": " + cluster::score_str(ns.total);
      if (!ns.terms.empty()) {
        line += " =";
        for (size_t i = 0; i < ns.terms.size(); ++i) {
          line +=
              (i == 0 ? " " : ", ") + ns.terms[i].what + " " + signed_score_str(ns.terms[i].value);
        }
      }
      out += line + "\n";
    }
    for (const auto& ns : ex.promotion) {
      std::string line = "  promotion " + ns.node + ": " + cluster::score_str(ns.total);
      if (!ns.terms.empty()) {
        line += " =";
        for (size_t i = 0; i < ns.terms.size(); ++i) {
          line +=
              (i == 0 ? " " : ", ") + ns.terms[i].what + " " + signed_score_str(ns.terms[i].value);
        }
      }
      out += line + "\n";
    }
    for (const auto& n : ex.notes) out += "  => " + n + "\n";
  }
  return out;
}

std::string render_dot(const Plan& p) {
  std::string out = "digraph plan {\n";
  for (const auto& a : p.actions) {
    out += "  a" + std::to_string(a.id) + " [label=\"" + std::to_string(a.id) + " " + a.label() +
           "\"];\n";
  }
  std::vector<std::pair<int, int>> edges;
  for (const auto& a : p.actions) {
    for (int d : a.after) edges.emplace_back(d, a.id);
  }
  std::sort(edges.begin(), edges.end());
  for (auto [from, to] : edges) {
    out += "  a" + std::to_string(from) + " -> a" + std::to_string(to) + ";\n";
  }
  return out + "}\n";
}

}  // namespace vigil::sched
