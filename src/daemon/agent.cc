// The running node: drives the Raft core with the WAL, the peer transport and the HTTP API
// on one event-loop thread (DESIGN.md "Data flows one way").
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "daemon/agent.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>

#include "api/http_server.h"
#include "base/env.h"
#include "daemon/api_setup.h"
#include "net/transport.h"
#include "raft/codec.h"
#include "raft/raft.h"
#include "storage/wal.h"
#include "store/kv.h"

namespace vigil::daemon {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kRequestTimeoutMs = 5000;

api::HttpResponse error_response(int status, std::string_view code, std::string_view message) {
  api::HttpResponse r;
  r.status = status;
  r.body = json{{"error", {{"code", code}, {"message", message}}}}.dump();
  return r;
}

api::HttpResponse json_response(const json& j, int status = 200) {
  api::HttpResponse r;
  r.status = status;
  r.body = j.dump();
  return r;
}

// Percent-decodes a URL path segment. Returns nullopt on a malformed escape.
std::optional<std::string> url_decode(std::string_view in) {
  auto hex = [](char h) -> int {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    int hi = hex(in[i + 1]);
    int lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

class Agent {
 public:
  explicit Agent(const AgentConfig& cfg)
      : cfg_(cfg),
        rng_(cfg.id.value() * 0x9e3779b97f4a7c15ULL ^
             static_cast<uint64_t>(Clock::now().time_since_epoch().count())),
        tick_timer_(io_),
        signals_(io_, SIGINT, SIGTERM) {}

  int run() {
    Status s = start();
    if (!s.ok()) {
      spdlog::critical("{}: cannot start: {}", cfg_.node, s.to_string());
      return 1;
    }
    io_.run();
    spdlog::info("{}: stopped", cfg_.node);
    return exit_code_;
  }

 private:
  struct PendingWrite {
    api::Responder respond;
    Clock::time_point deadline;
    std::string key;
    store::Op op;
  };
  struct PendingRead {
    api::Responder respond;
    Clock::time_point deadline;
    std::string key;
    LogIndex index;  // set once the read index is known
    bool have_index = false;
  };

  Status start() {
    // Durable state first: nothing is sent before we know our term and vote.
    storage::Wal::Options wo;
    wo.dir = cfg_.data_dir + "/raft";
    wo.fsync = cfg_.fsync;
    storage::Wal::Recovered rec;
    auto wal = storage::Wal::open(posix_env(), wo, &rec);
    if (!wal) return wal.error().with_context("open WAL in " + wo.dir);
    wal_ = std::move(*wal);
    if (!rec.torn_tail_note.empty()) {
      spdlog::warn("{}: WAL recovery: {}", cfg_.node, rec.torn_tail_note);
    }
    if (!rec.snapshot.empty() && rec.snapshot.data) {
      RETURN_IF_ERROR(kv_.restore(*rec.snapshot.data).with_context("restore snapshot"));
    }
    spdlog::info("{}: recovered term {} commit {} snapshot {} entries {}", cfg_.node,
                 rec.hard_state.term.value(), rec.hard_state.commit.value(),
                 rec.snapshot.meta.index.value(), rec.entries.size());

    raft::Config rc;
    rc.id = cfg_.id;
    for (const auto& p : cfg_.peers) rc.initial_conf.voters.push_back(p.id);
    std::sort(rc.initial_conf.voters.begin(), rc.initial_conf.voters.end());
    rc.heartbeat_tick = std::max(1, cfg_.timers.heartbeat_ticks());
    rc.election_tick = std::max(rc.heartbeat_tick + 1, cfg_.timers.election_ticks());
    raft::Restored restored;
    restored.hard_state = rec.hard_state;
    restored.snapshot = rec.snapshot;
    restored.entries = std::move(rec.entries);
    restored.applied = rec.snapshot.meta.index;
    last_snapshot_index_ = rec.snapshot.meta.index;
    raft_ = std::make_unique<raft::Raft>(rc, rng_, std::move(restored));

    net::TransportOptions to;
    to.self_id = cfg_.id;
    to.self_name = cfg_.node;
    to.cluster_name = cfg_.cluster;
    to.listen_address = cfg_.listen.peer.to_string();
    // Raft messages go stale fast: a short queue means a peer that comes back gets recent
    // traffic (and a snapshot if it fell behind) instead of a backlog of old appends.
    to.queue_limit_frames = 256;
    to.queue_limit_bytes = 64ull << 20;
    for (const auto& p : cfg_.peers) {
      peer_names_[p.id] = p.name;
      peer_api_[p.id] = p.api.to_string();
      if (p.id == cfg_.id) continue;
      to.peers[p.id] = net::PeerInfo{p.name, p.peer.to_string()};
    }
    if (cfg_.tls.insecure) {
      to.insecure_no_tls_for_test = true;
      spdlog::warn(
          "{}: peer TLS is OFF (tls.insecure): anyone who reaches {} can inject "
          "Raft messages; use only on loopback for trials",
          cfg_.node, to.listen_address);
    } else {
      to.ca_file = cfg_.tls.ca_file;
      to.cert_file = cfg_.tls.cert_file;
      to.key_file = cfg_.tls.key_file;
    }
    transport_ = std::make_unique<net::PeerTransport>(io_, to);
    transport_->set_on_message(
        [this](NodeId from, std::string payload) { on_peer_message(from, std::move(payload)); });
    RETURN_IF_ERROR(transport_->start());

    // api.tls and api.tokens (daemon/api_setup.h): the server checks the bearer token
    // before handle_http() sees a request.
    ASSIGN_OR_RETURN(auto http_options, api_server_options(cfg_));
    http_ = std::make_unique<api::HttpServer>(
        io_, std::move(http_options), [this](const api::HttpRequest& req, api::Responder respond) {
          handle_http(req, std::move(respond));
        });
    RETURN_IF_ERROR(http_->listen(cfg_.listen.api.to_string()));

    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) {
        spdlog::info("{}: signal {}: stopping", cfg_.node, sig);
        stop(0);
      }
    });
    next_tick_ = Clock::now();
    schedule_tick();
    schedule_drive();
    spdlog::info("{}: node {} (id {}) peer {} api {} cluster {}", cfg_.node, cfg_.node,
                 cfg_.id.value(), cfg_.listen.peer.to_string(), cfg_.listen.api.to_string(),
                 cfg_.cluster);
    return Status();
  }

  void stop(int code) {
    if (stopping_) return;
    stopping_ = true;
    exit_code_ = code;
    tick_timer_.cancel();
    signals_.cancel();
    if (http_) http_->stop();
    if (transport_) transport_->stop();
    io_.stop();
  }

  void fatal(const Status& s) {
    // After a failed write or fsync the durable state is unknown: stop and let recovery
    // from the WAL decide (STYLE.md "Errors").
    spdlog::critical("{}: fatal: {}", cfg_.node, s.to_string());
    stop(1);
  }

  // ------------------------------------------------------------------ loop
  void schedule_tick() {
    next_tick_ += std::chrono::milliseconds(cfg_.timers.tick_ms);
    auto now = Clock::now();
    if (next_tick_ < now) next_tick_ = now;  // never tick in bursts after a stall
    tick_timer_.expires_at(next_tick_);
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      raft_->tick();
      expire_requests();
      drive();
      schedule_tick();
    });
  }

  // Runs the Ready loop once every input already queued on the loop has been stepped, so
  // one Ready (one fdatasync) covers them all: group commit.
  void schedule_drive() {
    if (drive_posted_) return;
    drive_posted_ = true;
    asio::post(io_, [this] {
      drive_posted_ = false;
      drive();
    });
  }

  void drive() {
    while (!stopping_ && raft_->has_ready()) {
      raft::Ready rd = raft_->ready();
      if (rd.snapshot) {
        Status s = wal_->save_snapshot(*rd.snapshot);
        if (!s.ok()) return fatal(s);
      }
      Status s = wal_->append(rd.entries, rd.hard_state);
      if (!s.ok()) return fatal(s);
      if (rd.must_sync || !rd.entries.empty()) {
        s = wal_->sync();
        if (!s.ok()) return fatal(s);
      }
      for (auto& m : rd.messages) {
        (void)transport_->send(m.to, raft::encode_message(m));
      }
      if (rd.soft_state) on_soft_state(*rd.soft_state);
      if (rd.snapshot) {
        Status rs = kv_.restore(rd.snapshot->data ? *rd.snapshot->data : std::string());
        if (!rs.ok()) return fatal(rs.with_context("install snapshot"));
        last_snapshot_index_ = rd.snapshot->meta.index;
        spdlog::info("{}: installed snapshot at index {}", cfg_.node,
                     rd.snapshot->meta.index.value());
      }
      for (const auto& e : rd.committed_entries) apply(e);
      for (const auto& r : rd.read_states) on_read_state(r);
      raft_->advance(rd);
      serve_reads();
      maybe_snapshot();
    }
  }

  void on_soft_state(const raft::SoftState& ss) {
    if (ss.leader != known_leader_) {
      known_leader_ = ss.leader;
      if (ss.leader == kNoNode) {
        spdlog::info("{}: no leader (term {})", cfg_.node, raft_->term().value());
      } else {
        spdlog::info("{}: leader is {} (term {}), this node is {}", cfg_.node, name_of(ss.leader),
                     raft_->term().value(), raft::role_name(ss.role));
      }
    }
  }

  void apply(const raft::Entry& e) {
    last_applied_term_ = e.term;
    if (e.type == raft::EntryType::kConfChange) {
      auto cc = raft::decode_conf_change(e.data);
      if (!cc) {
        fatal(cc.error().with_context("committed membership change at index " + e.index.str()));
        return;
      }
      raft_->apply_conf_change(*cc);
      kv_.apply_noop(e.index);
      return;
    }
    if (e.data.empty()) {
      kv_.apply_noop(e.index);
      return;
    }
    auto cmd = store::decode_command(e.data);
    if (!cmd) {
      // Every replica sees the same bytes and skips them the same way.
      spdlog::error("{}: skipping undecodable entry {}: {}", cfg_.node, e.index.value(),
                    cmd.error().to_string());
      kv_.apply_noop(e.index);
      return;
    }
    store::ApplyResult res = kv_.apply(e.index, *cmd);
    if (cmd->origin == cfg_.id) {
      auto it = pending_writes_.find(cmd->request);
      if (it != pending_writes_.end()) {
        json j{{"key", cmd->key}, {"revision", res.index.value()}};
        if (cmd->op == store::Op::kDelete) j["deleted"] = res.existed;
        it->second.respond(json_response(j));
        pending_writes_.erase(it);
      }
    }
  }

  void maybe_snapshot() {
    LogIndex applied = kv_.applied();
    if (applied - last_snapshot_index_ < cfg_.snapshot_entries || applied <= last_snapshot_index_) {
      return;
    }
    raft::Snapshot snap;
    snap.meta.index = applied;
    snap.meta.term = last_applied_term_;
    snap.meta.conf = raft_->conf();
    snap.data = std::make_shared<const std::string>(kv_.serialize());
    Status s = wal_->save_snapshot(snap);
    if (!s.ok()) return fatal(s.with_context("save snapshot"));
    s = raft_->compact(snap);
    if (!s.ok()) {
      spdlog::warn("{}: compact at {}: {}", cfg_.node, applied.value(), s.to_string());
      return;
    }
    last_snapshot_index_ = applied;
    s = wal_->release_to(applied);
    if (!s.ok()) spdlog::warn("{}: release WAL segments: {}", cfg_.node, s.to_string());
    spdlog::info("{}: snapshot at index {} ({} keys, {} bytes)", cfg_.node, applied.value(),
                 kv_.size(), snap.data->size());
  }

  // ------------------------------------------------------------------ peers
  void on_peer_message(NodeId from, std::string payload) {
    auto m = raft::decode_message(payload);
    if (!m) {
      spdlog::warn("{}: dropping malformed Raft message from {}: {}", cfg_.node, name_of(from),
                   m.error().to_string());
      return;
    }
    // Forwarded proposals and transfers name the original requester; every other message
    // must come from the authenticated peer it claims.
    const bool forwarded =
        m->type == raft::MsgType::kPropose || m->type == raft::MsgType::kTransferLeader;
    if (!forwarded && m->from != from) {
      spdlog::warn("{}: dropping message claiming to be from {} on {}'s connection", cfg_.node,
                   m->from.value(), name_of(from));
      return;
    }
    if (m->type == raft::MsgType::kReadIndex && m->from != from) return;
    Status s = raft_->step(*m);
    if (!s.ok()) {
      spdlog::debug("{}: step {} from {}: {}", cfg_.node, raft::msg_type_name(m->type),
                    name_of(from), s.to_string());
    }
    schedule_drive();
  }

  std::string name_of(NodeId id) const {
    auto it = peer_names_.find(id);
    return it == peer_names_.end() ? "node " + id.str() : it->second;
  }

  // ------------------------------------------------------------------ reads
  void on_read_state(const raft::ReadState& rs) {
    auto it = pending_reads_.find(rs.context);
    if (it == pending_reads_.end()) return;
    it->second.index = rs.index;
    it->second.have_index = true;
  }

  void serve_reads() {
    for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
      if (it->second.have_index && kv_.applied() >= it->second.index) {
        answer_get(it->second.key, it->second.respond);
        it = pending_reads_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void answer_get(const std::string& key, const api::Responder& respond) {
    auto v = kv_.get(key);
    if (!v) {
      respond(error_response(404, "not_found", "key '" + key + "' not found"));
      return;
    }
    respond(json_response(json{{"key", key}, {"value", *v}, {"applied", kv_.applied().value()}}));
  }

  void expire_requests() {
    auto now = Clock::now();
    for (auto it = pending_writes_.begin(); it != pending_writes_.end();) {
      if (now >= it->second.deadline) {
        it->second.respond(error_response(503, "timeout",
                                          "the write was not committed within " +
                                              std::to_string(kRequestTimeoutMs) +
                                              " ms (no quorum?); it may still be applied later"));
        it = pending_writes_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
      if (now >= it->second.deadline) {
        it->second.respond(
            error_response(503, "timeout",
                           "could not confirm leadership for a linearizable read within " +
                               std::to_string(kRequestTimeoutMs) + " ms (no quorum?)"));
        it = pending_reads_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // ------------------------------------------------------------------ HTTP API
  json status_json() const {
    json j;
    j["node"] = cfg_.node;
    j["id"] = cfg_.id.value();
    j["cluster"] = cfg_.cluster;
    j["role"] = raft::role_name(raft_->role());
    j["term"] = raft_->term().value();
    NodeId leader = raft_->leader();
    j["leader"] = leader == kNoNode ? json(nullptr) : json(name_of(leader));
    j["leader_id"] = leader.value();
    if (leader != kNoNode) j["leader_api"] = peer_api_.at(leader);
    j["commit"] = raft_->commit_index().value();
    j["applied"] = kv_.applied().value();
    j["first_index"] = raft_->first_index().value();
    j["last_index"] = raft_->last_index().value();
    j["snapshot_index"] = last_snapshot_index_.value();
    j["keys"] = kv_.size();
    j["lease_valid"] = raft_->lease_valid();
    json voters = json::array();
    for (NodeId v : raft_->conf().voters) voters.push_back(name_of(v));
    j["voters"] = voters;
    if (raft_->role() == raft::StateRole::kLeader) {
      json prs = json::array();
      for (const auto& p : raft_->progress()) {
        prs.push_back({{"node", name_of(p.id)},
                       {"match", p.match.value()},
                       {"next", p.next.value()},
                       {"state", p.state},
                       {"active", p.recent_active}});
      }
      j["progress"] = prs;
    }
    auto ts = transport_->stats();
    j["transport"] = {{"frames_sent", ts.frames_sent},
                      {"frames_received", ts.frames_received},
                      {"frames_dropped", ts.frames_dropped},
                      {"connects", ts.connects},
                      {"rejected_connections", ts.rejected_connections}};
    return j;
  }

  void handle_http(const api::HttpRequest& req, api::Responder respond) {
    std::string_view target = req.target;
    std::string_view query;
    if (auto q = target.find('?'); q != std::string_view::npos) {
      query = target.substr(q + 1);
      target = target.substr(0, q);
    }
    if (target == "/v1/status") {
      if (req.method != "GET") return respond(method_not_allowed(req, "GET"));
      return respond(json_response(status_json()));
    }
    constexpr std::string_view kKv = "/v1/kv/";
    if (target.substr(0, kKv.size()) == kKv) {
      auto key = url_decode(target.substr(kKv.size()));
      if (!key || key->empty()) {
        return respond(error_response(400, "bad_key",
                                      "the key in the path is empty or badly percent-encoded"));
      }
      if (key->size() > store::kMaxKeyBytes) {
        return respond(error_response(
            413, "too_large", "key longer than " + std::to_string(store::kMaxKeyBytes) + " bytes"));
      }
      if (req.method == "PUT" || req.method == "POST") {
        return propose_write(store::Op::kPut, *key, req.body, std::move(respond));
      }
      if (req.method == "DELETE") {
        return propose_write(store::Op::kDelete, *key, "", std::move(respond));
      }
      if (req.method == "GET") {
        const bool serializable = query.find("serializable=true") != std::string_view::npos;
        return read(*key, serializable, std::move(respond));
      }
      return respond(method_not_allowed(req, "GET, PUT, DELETE"));
    }
    respond(error_response(404, "not_found",
                           "no such endpoint: " + req.method + " " + std::string(target)));
  }

  static api::HttpResponse method_not_allowed(const api::HttpRequest& req,
                                              std::string_view allowed) {
    return error_response(405, "method_not_allowed",
                          req.method + " is not allowed on " + req.target +
                              " (allowed: " + std::string(allowed) + ")");
  }

  void propose_write(store::Op op, const std::string& key, const std::string& value,
                     api::Responder respond) {
    if (value.size() > store::kMaxValueBytes) {
      return respond(
          error_response(413, "too_large",
                         "value larger than " + std::to_string(store::kMaxValueBytes) + " bytes"));
    }
    store::Command c;
    c.op = op;
    c.origin = cfg_.id;
    c.request = next_request_++;
    c.key = key;
    c.value = value;
    Status s = raft_->propose(store::encode_command(c));
    if (!s.ok()) {
      int status = s.code() == Errc::kResourceExhausted ? 429 : 503;
      return respond(error_response(status, "unavailable", s.message()));
    }
    pending_writes_[c.request] = PendingWrite{
        std::move(respond), Clock::now() + std::chrono::milliseconds(kRequestTimeoutMs), key, op};
    schedule_drive();
  }

  void read(const std::string& key, bool serializable, api::Responder respond) {
    if (serializable) return answer_get(key, respond);
    if (raft_->leader() == kNoNode) {
      return respond(error_response(503, "unavailable",
                                    "no leader known: a linearizable read needs a quorum "
                                    "(retry, or add ?serializable=true for this node's view)"));
    }
    std::string ctx = cfg_.node + "/" + std::to_string(next_request_++);
    pending_reads_[ctx] =
        PendingRead{std::move(respond), Clock::now() + std::chrono::milliseconds(kRequestTimeoutMs),
                    key, LogIndex(0), false};
    raft_->read_index(ctx);
    schedule_drive();
  }

  AgentConfig cfg_;
  asio::io_context io_;
  SplitMix64 rng_;
  asio::steady_timer tick_timer_;
  asio::signal_set signals_;
  Clock::time_point next_tick_;
  std::unique_ptr<storage::Wal> wal_;
  std::unique_ptr<raft::Raft> raft_;
  std::unique_ptr<net::PeerTransport> transport_;
  std::unique_ptr<api::HttpServer> http_;
  store::KvMap kv_;
  std::map<NodeId, std::string> peer_names_;
  std::map<NodeId, std::string> peer_api_;
  NodeId known_leader_;
  Term last_applied_term_;
  LogIndex last_snapshot_index_;
  uint64_t next_request_ = 1;
  std::map<uint64_t, PendingWrite> pending_writes_;
  std::map<std::string, PendingRead> pending_reads_;
  bool drive_posted_ = false;
  bool stopping_ = false;
  int exit_code_ = 0;
};

}  // namespace

int run_agent(const AgentConfig& config) {
  switch (config.log_level) {
    case LogLevel::kTrace:
      spdlog::set_level(spdlog::level::trace);
      break;
    case LogLevel::kDebug:
      spdlog::set_level(spdlog::level::debug);
      break;
    case LogLevel::kInfo:
      spdlog::set_level(spdlog::level::info);
      break;
    case LogLevel::kWarn:
      spdlog::set_level(spdlog::level::warn);
      break;
    case LogLevel::kError:
      spdlog::set_level(spdlog::level::err);
      break;
  }
  for (const auto& w : config_warnings(config)) spdlog::warn("config: {}", w);
  Agent agent(config);
  return agent.run();
}

}  // namespace vigil::daemon
