// Test harness shared by the Raft unit tests: a cluster of cores over an in-memory network
// that the test controls (delivery order, partitions, drops).
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/codec.h"
#include "raft/raft.h"

namespace vigil::raft {

// A cluster of Raft cores wired by a message queue the test controls.
class Net {
 public:
  explicit Net(int n, uint64_t seed = 1, std::function<void(Config&)> tweak = {}) {
    ConfState cs;
    for (int i = 1; i <= n; ++i) cs.voters.push_back(NodeId(i));
    for (int i = 1; i <= n; ++i) {
      Config c;
      c.id = NodeId(i);
      c.initial_conf = cs;
      if (tweak) tweak(c);
      configs_[NodeId(i)] = c;
      rngs_[NodeId(i)] = std::make_unique<SplitMix64>(seed * 100 + i);
      nodes_[NodeId(i)] = std::make_unique<Raft>(c, *rngs_[NodeId(i)]);
    }
  }

  Raft& node(int i) { return *nodes_.at(NodeId(i)); }

  // Runs every node's Ready loop once, moving messages onto the wire.
  void process() {
    for (auto& [id, r] : nodes_) {
      if (down_.count(id)) continue;
      while (r->has_ready()) {
        Ready rd = r->ready();
        store(id, rd);
        for (auto& e : rd.committed_entries) {
          if (e.type == EntryType::kConfChange) {
            auto cc = decode_conf_change(e.data);
            EXPECT_TRUE(cc.has_value());
            r->apply_conf_change(*cc);
          }
          applied_[id].push_back(e);
        }
        if (rd.snapshot) applied_[id].clear();
        for (auto& rs : rd.read_states) reads_[id].push_back(rs);
        for (auto& m : rd.messages) wire_.push_back(m);
        r->advance(rd);
      }
    }
  }

  // Delivers messages until the network is quiet (or `limit` deliveries).
  void settle(int limit = 100000) {
    process();
    while (!wire_.empty() && limit-- > 0) {
      Message m = wire_.front();
      wire_.pop_front();
      if (blocked(m.from, m.to)) continue;
      if (drop_ && drop_(m)) continue;
      if (tamper_) tamper_(m);
      auto it = nodes_.find(m.to);
      if (it == nodes_.end() || down_.count(m.to)) continue;
      (void)it->second->step(m);
      process();
    }
  }

  void tick_all(int n) {
    for (int k = 0; k < n; ++k) {
      for (auto& [id, r] : nodes_) {
        if (!down_.count(id)) r->tick();
      }
      settle();
    }
  }

  // Ticks until some node is leader; returns its id (0 if none after `max` ticks).
  int elect(int max = 200) {
    for (int k = 0; k < max; ++k) {
      int l = leader();
      if (l != 0) return l;
      tick_all(1);
    }
    return 0;
  }

  int leader() {
    int found = 0;
    Term best;
    for (auto& [id, r] : nodes_) {
      if (down_.count(id)) continue;
      if (r->role() == StateRole::kLeader && r->term() >= best) {
        best = r->term();
        found = static_cast<int>(id.value());
      }
    }
    return found;
  }

  void isolate(int i) { isolated_.insert(NodeId(i)); }
  void heal() {
    isolated_.clear();
    cut_.clear();
  }
  void cut(int a, int b) {
    cut_.insert({NodeId(a), NodeId(b)});
    cut_.insert({NodeId(b), NodeId(a)});
  }
  bool blocked(NodeId a, NodeId b) const {
    return isolated_.count(a) || isolated_.count(b) || cut_.count({a, b});
  }

  // What node i has persisted (what a restart reads back).
  struct Stored {
    HardState hard_state;
    Snapshot snapshot;
    std::vector<Entry> entries;
  };
  const Stored& stored(int i) { return stored_[NodeId(i)]; }

  // Restarts node i from what it persisted; it forgets everything else (its state machine
  // is rebuilt from the snapshot, so `applied` is the snapshot index).
  void restart(int i) {
    const Stored& st = stored_[NodeId(i)];
    Restored r;
    r.hard_state = st.hard_state;
    r.snapshot = st.snapshot;
    r.entries = st.entries;
    r.applied = st.snapshot.meta.index;
    applied_[NodeId(i)].clear();
    replace(i, configs_.at(NodeId(i)), std::move(r));
  }

  // Replaces node i with a core built from `c` and `r` (a hand-made restored state).
  void replace(int i, Config c, Restored r = {}) {
    c.id = NodeId(i);
    configs_[NodeId(i)] = c;
    Stored st;
    st.hard_state = r.hard_state;
    st.snapshot = r.snapshot;
    st.entries = r.entries;
    stored_[NodeId(i)] = st;
    rngs_[NodeId(i)] = std::make_unique<SplitMix64>(777 + i);
    nodes_[NodeId(i)] = std::make_unique<Raft>(c, *rngs_[NodeId(i)], std::move(r));
  }

  // Replaces node i with a fresh core (as if it joined empty).
  void add_empty(int i, ConfState initial = {}) {
    Config c;
    c.id = NodeId(i);
    c.initial_conf = initial;
    configs_[NodeId(i)] = c;
    stored_[NodeId(i)] = Stored{};
    rngs_[NodeId(i)] = std::make_unique<SplitMix64>(999 + i);
    nodes_[NodeId(i)] = std::make_unique<Raft>(c, *rngs_[NodeId(i)]);
  }

  std::vector<std::string> data_applied(int i) {
    std::vector<std::string> out;
    for (auto& e : applied_[NodeId(i)]) {
      if (e.type == EntryType::kNormal && !e.data.empty()) out.push_back(e.data);
    }
    return out;
  }

  std::map<NodeId, std::vector<ReadState>> reads_;
  std::map<NodeId, std::vector<Entry>> applied_;
  std::set<NodeId> down_;
  std::deque<Message> wire_;
  // Messages for which this returns true are dropped on delivery (lost on the network).
  std::function<bool(const Message&)> drop_;
  // Rewrites each message just before delivery (e.g. strips some entries).
  std::function<void(Message&)> tamper_;

 private:
  // Persists what a Ready asks to (a perfect disk).
  void store(NodeId id, const Ready& rd) {
    Stored& st = stored_[id];
    if (rd.snapshot) {
      st.snapshot = *rd.snapshot;
      st.entries.clear();
    }
    if (!rd.entries.empty()) {
      LogIndex first = rd.entries.front().index;
      while (!st.entries.empty() && st.entries.back().index >= first) st.entries.pop_back();
      for (const Entry& e : rd.entries) st.entries.push_back(e);
    }
    if (rd.hard_state) st.hard_state = *rd.hard_state;
  }

  std::map<NodeId, Stored> stored_;
  std::map<NodeId, Config> configs_;
  std::map<NodeId, std::unique_ptr<SplitMix64>> rngs_;
  std::map<NodeId, std::unique_ptr<Raft>> nodes_;
  std::set<NodeId> isolated_;
  std::set<std::pair<NodeId, NodeId>> cut_;
};

}  // namespace vigil::raft
