// The running node: drives the Raft core with the WAL, the peer transport and the HTTP API
// on one event-loop thread (DESIGN.md "Data flows one way"); a worker thread only writes
// snapshot files (daemon/background_job.h).
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
#include "api/store_json.h"
#include "base/env.h"
#include "daemon/api_setup.h"
#include "daemon/background_job.h"
#include "daemon/cluster_service.h"
#include "daemon/registry_service.h"
#include "daemon/store_service.h"
#include "net/transport.h"
#include "raft/codec.h"
#include "raft/raft.h"
#include "storage/wal.h"

namespace vigil::daemon {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

using api::error_response;
using api::json_response;

// The node. Implements StoreHost so the store service can propose and read through Raft.
class Agent final : public StoreHost, public ClusterHost {
 public:
  explicit Agent(const AgentConfig& cfg)
      : cfg_(cfg),
        rng_(cfg.id.value() * 0x9e3779b97f4a7c15ULL ^
             static_cast<uint64_t>(Clock::now().time_since_epoch().count())),
        tick_timer_(io_),
        signals_(io_, SIGINT, SIGTERM),
        snapshot_job_(io_) {}

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
    store_ = std::make_unique<StoreService>(cfg_.id, *this);
    registry_ = std::make_unique<RegistryService>(io_, *store_, cfg_.node);
    ClusterServiceOptions co;
    co.node = cfg_.node;
    for (const auto& p : cfg_.peers) co.members.push_back(p.name);
    co.data_dir = cfg_.data_dir;
    co.hold_ms = cfg_.timers.hold_ms;
    co.hold_guard_ms = cfg_.timers.hold_guard_ms;
    co.tick_ms = cfg_.timers.tick_ms;
    co.clock_drift = cfg_.timers.clock_drift;
    co.event_retention = cfg_.event_retention;
    if (const char* root = std::getenv("VIGIL_OCF_ROOT")) co.ocf_root = root;
    if (const char* dir = std::getenv("VIGIL_FENCE_DIR")) co.fence_dir = dir;
    cluster_ = std::make_unique<ClusterService>(io_, *store_, *this, co);
    if (!rec.snapshot.empty() && rec.snapshot.data) {
      RETURN_IF_ERROR(
          store_->restore(*rec.snapshot.data, now_ms()).with_context("restore snapshot"));
      last_snapshot_bytes_ = rec.snapshot.data->size();
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
    election_tick_ = static_cast<uint64_t>(rc.election_tick);
    note_tick();
    // The snapshot's data stays in its file (send_raft() reads it back for a follower).
    raft_->release_snapshot_data();
    rec.snapshot.data.reset();

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

    wait_for_signal();
    next_tick_ = Clock::now();
    schedule_tick();
    schedule_drive();
    spdlog::info("{}: node {} (id {}) peer {} api {} cluster {}", cfg_.node, cfg_.node,
                 cfg_.id.value(), cfg_.listen.peer.to_string(), cfg_.listen.api.to_string(),
                 cfg_.cluster);
    return Status();
  }

  // SIGTERM or SIGINT: the node gives up its hold and stops its exclusive resources (VIPs
  // first), hands leadership on if it leads, then exits. A second signal exits at once.
  void wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (leaving_) {
        spdlog::warn("{}: signal {} again: stopping now", cfg_.node, sig);
        return stop(0);
      }
      leaving_ = true;
      spdlog::info("{}: signal {}: stopping", cfg_.node, sig);
      wait_for_signal();
      cluster_->shutdown([this] { hand_on_leadership(); });
    });
  }

  // As leader: leadership goes to the most up-to-date active voter before this node exits,
  // so that the cluster does not wait out an election timeout. Waits at most one election
  // timeout for it.
  void hand_on_leadership() {
    if (!is_leader()) return stop(0);
    // Preferably to a voter that runs nothing exclusive: a new leader's hold is its lease,
    // valid only once a quorum has answered it, so a VIP holder made leader would drop its
    // VIP for a moment; a follower's hold carries on under the new leader's first grant.
    NodeId best;
    LogIndex best_match;
    bool best_runs = true;
    for (const auto& p : raft_->progress()) {
      if (p.id == cfg_.id || p.is_learner || !p.recent_active) continue;
      const bool runs = cluster_->runs_exclusive(name_of(p.id));
      if (best == kNoNode || (!runs && best_runs) || (runs == best_runs && p.match > best_match)) {
        best = p.id;
        best_match = p.match;
        best_runs = runs;
      }
    }
    if (best == kNoNode || !raft_->transfer_leadership(best).ok()) return stop(0);
    spdlog::info("{}: handing leadership to {}", cfg_.node, name_of(best));
    schedule_drive();
    leave_deadline_ = Clock::now() + std::chrono::milliseconds(cfg_.timers.election_timeout_ms);
    wait_to_leave();
  }

  void wait_to_leave() {
    if (!is_leader() || Clock::now() >= leave_deadline_) return stop(0);
    auto t = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(10));
    t->async_wait([this, t](const boost::system::error_code& ec) {
      if (!ec && !stopping_) wait_to_leave();
    });
  }

  void stop(int code) {
    if (stopping_) return;
    stopping_ = true;
    exit_code_ = code;
    tick_timer_.cancel();
    signals_.cancel();
    snapshot_job_.cancel();
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
      note_tick();
      campaign_if_holding();
      store_->tick(now_ms());
      registry_->tick(now_ms());
      cluster_->tick(now_ms());
      drive();
      schedule_tick();
    });
  }

  // A follower that runs something exclusive campaigns the moment its promise to a silent
  // leader allows (Raft::campaign: pre-vote, nothing within the lease), again every tick
  // while its pre-vote waits, rather than after its randomized timeout: elected before
  // its hold ends, it keeps holding (hold_deadline: a new leader carries its follower hold
  // until its lease), so the death of a leader does not interrupt its VIPs. Pre-vote keeps
  // this from disturbing a leader the others still hear.
  void campaign_if_holding() {
    const raft::StateRole role = raft_->role();
    if (role != raft::StateRole::kFollower && role != raft::StateRole::kPreCandidate) return;
    if (role == raft::StateRole::kFollower) {
      // Only against a leader it knows and no longer hears: with none known (a new term whose
      // leader has not spoken yet, as in a hand-over) Raft's lease check cannot stop it, and
      // it would depose the leader just elected (found by LeaderStopsAndHandsOnToTheHolder).
      const NodeId l = raft_->leader();
      if (l == kNoNode) return;
      auto it = last_heard_.find(l);
      const int64_t quiet = static_cast<int64_t>(cfg_.timers.election_timeout_ms) -
                            static_cast<int64_t>(cfg_.timers.tick_ms);
      if (it != last_heard_.end() && now_ms() - it->second < quiet) return;
    }
    if (!hold_valid() || !cluster_->runs_exclusive(cfg_.node)) return;
    raft_->campaign();
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
      const auto t0 = Clock::now();
      raft::Ready rd = raft_->ready();
      // A leader's appends go out before its own fsync, so the followers' disk writes
      // overlap the leader's (types.h: can_send_before_persist); the rest waits.
      std::vector<raft::Message> after_persist;
      for (auto& m : rd.messages) {
        if (raft::can_send_before_persist(m.type)) {
          send_raft(m);
        } else {
          after_persist.push_back(std::move(m));
        }
      }
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
      const auto t_sync = Clock::now();
      for (auto& m : after_persist) send_raft(m);
      if (rd.soft_state) on_soft_state(*rd.soft_state);
      if (rd.snapshot) {
        Status rs =
            store_->restore(rd.snapshot->data ? *rd.snapshot->data : std::string(), now_ms());
        if (!rs.ok()) return fatal(rs.with_context("install snapshot"));
        last_snapshot_index_ = rd.snapshot->meta.index;
        last_snapshot_bytes_ = rd.snapshot->data ? rd.snapshot->data->size() : 0;
        log_bytes_at_snapshot_ = log_bytes_applied_;
        spdlog::info("{}: installed snapshot at index {}", cfg_.node,
                     rd.snapshot->meta.index.value());
      }
      for (const auto& e : rd.committed_entries) apply(e);
      const auto t_apply = Clock::now();
      for (const auto& r : rd.read_states) store_->on_read_state(r);
      raft_->advance(rd);
      if (rd.snapshot) raft_->release_snapshot_data();  // saved in its file above
      store_->serve_reads();
      maybe_snapshot();
      note_slow_ready(rd, t0, t_sync, t_apply);
      if (!rd.committed_entries.empty() || rd.snapshot) cluster_->after_apply(now_ms());
    }
    if (cluster_) cluster_->hold_changed();
  }

  // A Ready that held the loop for long (every request waits for it) is logged with where
  // the time went, so an operator can tell a slow disk from a slow apply.
  void note_slow_ready(const raft::Ready& rd, Clock::time_point t0, Clock::time_point t_sync,
                       Clock::time_point t_apply) {
    constexpr auto kSlow = std::chrono::milliseconds(20);
    const auto t_end = Clock::now();
    if (t_end - t0 < kSlow) return;
    auto ms = [](Clock::duration d) {
      return std::chrono::duration<double, std::milli>(d).count();
    };
    spdlog::info(
        "{}: slow Ready, {:.1f} ms: {} entries written and synced in {:.1f} ms, {} applied "
        "in {:.1f} ms, the rest {:.1f} ms",
        cfg_.node, ms(t_end - t0), rd.entries.size(), ms(t_sync - t0), rd.committed_entries.size(),
        ms(t_apply - t_sync), ms(t_end - t_apply));
  }

  // When each recent tick began: the leader's lease counted in time (hold_deadline).
  void note_tick() {
    tick_times_.emplace_back(raft_->now_tick(), Clock::now());
    while (tick_times_.size() > election_tick_ + 2) tick_times_.pop_front();
  }

  void on_soft_state(const raft::SoftState& ss) {
    const bool leader = ss.role == raft::StateRole::kLeader;
    if (leader && !was_leader_) {
      leader_since_ms_ = now_ms();  // steady: holds are reckoned from it
      // The leader this node followed, if it led the term just before this one.
      previous_leader_.clear();
      if (followed_leader_ != kNoNode && followed_term_ + 1 == raft_->term().value()) {
        previous_leader_ = name_of(followed_leader_);
      }
    } else if (!leader && was_leader_) {
      ++hold_generation_;
    }
    if (!leader && ss.leader != kNoNode && ss.leader != raft_->id()) {
      followed_leader_ = ss.leader;
      followed_term_ = raft_->term().value();
    }
    was_leader_ = leader;
    store_->on_leadership(leader, now_ms());
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
    log_bytes_applied_ += e.data.size();
    if (e.type == raft::EntryType::kConfChange) {
      auto cc = raft::decode_conf_change(e.data);
      if (!cc) {
        fatal(cc.error().with_context("committed membership change at index " + e.index.str()));
        return;
      }
      raft_->apply_conf_change(*cc);
      store_->apply_noop(e.index);
      return;
    }
    if (e.data.empty()) {
      store_->apply_noop(e.index);
      return;
    }
    Status s = store_->apply(e.index, e.data, now_ms());
    if (!s.ok()) {
      // Every replica sees the same bytes and skips them the same way.
      spdlog::error("{}: skipped undecodable entry {}: {}", cfg_.node, e.index.value(),
                    s.to_string());
    }
  }

  // Snapshots, in three steps so that the loop never waits long:
  // 1. a worker thread (daemon/background_job.h) faults in a buffer the size of the store's
  //    bytes (on a VM a fresh page costs ~10-40 us: 7 MB of them would stall the loop for
  //    50-100 ms, the first slice of the stall that made the put p99);
  // 2. the loop serializes the store into it (~12 ms for 32k keys and 14 MB);
  // 3. the worker writes and syncs the file while this loop goes on serving; once it is
  //    done, the WAL adopts the file and Raft drops the entries it covers.
  // Taken when at least snapshot_entries entries and a quarter of the last snapshot's size
  // in entry bytes were applied since the last one, so a large store is not rewritten every
  // few thousand small writes (the cost of a snapshot is O(state), of the log O(writes)).
  void maybe_snapshot() {
    if (snapshot_job_.running() || stopping_) return;
    LogIndex applied = store_->applied();
    if (applied - last_snapshot_index_ < cfg_.snapshot_entries || applied <= last_snapshot_index_) {
      return;
    }
    if (log_bytes_applied_ - log_bytes_at_snapshot_ < last_snapshot_bytes_ / 4) return;
    const int64_t now = now_ms();
    if (now < snapshot_retry_at_ms_) return;
    const auto t0 = Clock::now();
    const size_t size = store_->snapshot_size();
    const size_t want = size + size / 8 + 4096;  // room for what is applied meanwhile
    Status s = snapshot_job_.start(
        [want]() -> Result<std::string> {
          std::string buffer;
          buffer.resize(want);  // touches every page
          buffer.clear();       // keeps the memory
          return buffer;
        },
        [this, t0](Result<std::string> r) {
          write_snapshot(t0, r ? std::move(*r) : std::string());
        });
    if (!s.ok()) {
      spdlog::warn("{}: cannot start the snapshot at index {}: {}", cfg_.node, applied.value(),
                   s.to_string());
      snapshot_retry_at_ms_ = now + kSnapshotRetryMs;
    }
  }

  void write_snapshot(Clock::time_point t0, std::string buffer) {
    LogIndex applied = store_->applied();
    // A snapshot installed from the leader meanwhile may have made this one unneeded.
    if (stopping_ || applied <= last_snapshot_index_ ||
        applied - last_snapshot_index_ < cfg_.snapshot_entries) {
      return;
    }
    const auto t1 = Clock::now();
    auto snap = std::make_shared<raft::Snapshot>();
    snap->meta.index = applied;
    snap->meta.term = last_applied_term_;
    snap->meta.conf = raft_->conf();
    snap->data = std::make_shared<const std::string>(store_->snapshot(std::move(buffer)));
    const auto serialized_us =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t1).count();
    const uint64_t log_bytes = log_bytes_applied_;
    const storage::Wal* wal = wal_.get();
    Status s = snapshot_job_.start(
        // On the worker thread: only the snapshot it owns and the const file write.
        [wal, snap]() -> Result<std::string> {
          RETURN_IF_ERROR(wal->write_snapshot_file(*snap));
          return std::to_string(snap->data->size());
        },
        [this, meta = snap->meta, log_bytes, t0, serialized_us,
         keys = store_->key_count()](Result<std::string> r) {
          on_snapshot_written(meta, log_bytes, t0, serialized_us, keys, std::move(r));
        });
    if (!s.ok()) {
      spdlog::warn("{}: cannot write the snapshot at index {}: {}", cfg_.node, applied.value(),
                   s.to_string());
      snapshot_retry_at_ms_ = now_ms() + kSnapshotRetryMs;
    }
  }

  void on_snapshot_written(const raft::SnapshotMeta& meta, uint64_t log_bytes, Clock::time_point t0,
                           int64_t serialized_us, size_t keys, Result<std::string> r) {
    if (stopping_) return;
    if (!r) {
      spdlog::error("{}: snapshot at index {} failed: {}", cfg_.node, meta.index.value(),
                    r.error().to_string());
      snapshot_retry_at_ms_ = now_ms() + kSnapshotRetryMs;
      return;
    }
    Status s = wal_->adopt_snapshot(meta);
    if (s.code() == Errc::kOutOfRange) {  // a newer snapshot was installed meanwhile
      spdlog::info("{}: snapshot at index {} overtaken: {}", cfg_.node, meta.index.value(),
                   s.message());
      return;
    }
    if (!s.ok()) return fatal(s.with_context("adopt snapshot"));
    raft::Snapshot snap;
    snap.meta = meta;  // no data: it stays in the file (send_raft)
    s = raft_->compact(snap);
    if (!s.ok()) {
      spdlog::warn("{}: compact at {}: {}", cfg_.node, meta.index.value(), s.to_string());
      return;
    }
    last_snapshot_index_ = meta.index;
    last_snapshot_bytes_ = std::strtoull(r->c_str(), nullptr, 10);
    log_bytes_at_snapshot_ = log_bytes;
    s = wal_->release_to(meta.index);
    if (!s.ok()) spdlog::warn("{}: release WAL segments: {}", cfg_.node, s.to_string());
    spdlog::info(
        "{}: snapshot at index {} ({} keys, {} bytes) in {} ms, {} us of it serialized on "
        "the loop",
        cfg_.node, meta.index.value(), keys, last_snapshot_bytes_,
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(),
        serialized_us);
  }

  // Sends one Raft message. A snapshot message gets its data from the snapshot file (Raft
  // keeps only the meta; see release_snapshot_data()); followers that fall behind at the
  // same time share one copy.
  void send_raft(raft::Message& m) {
    if (m.type == raft::MsgType::kSnapshot && m.snapshot) {
      std::shared_ptr<const std::string> data = sent_snapshot_data_.lock();
      if (!data || sent_snapshot_meta_ != m.snapshot->meta) {
        auto read = wal_->read_snapshot_data(m.snapshot->meta);
        if (!read) {
          // Raft retries the peer after its snapshot wait; a missing file is logged.
          spdlog::error("{}: cannot send snapshot {} to {}: {}", cfg_.node,
                        m.snapshot->meta.index.value(), name_of(m.to), read.error().to_string());
          return;
        }
        data = std::move(*read);
        sent_snapshot_data_ = data;
        sent_snapshot_meta_ = m.snapshot->meta;
      }
      m.snapshot->data = std::move(data);
    }
    stamp_hold(m);
    (void)transport_->send(m.to, raft::encode_message(m));
  }

  // Holds, the Chubby rule (DESIGN.md "Holds"): every message carries when it was sent; a
  // leader whose lease is valid tells each peer the latest of those it received from it, and
  // a follower's hold runs from there. A follower whose messages stop reaching the leader
  // (a one-way partition) loses its hold no later than the leader counts it lost, however
  // long it keeps hearing the leader.
  void stamp_hold(raft::Message& m) {
    m.hold_sent = static_cast<uint64_t>(now_ms());
    if (is_leader() && m.term == raft_->term() && raft_->lease_valid()) {
      auto it = peer_hold_sent_.find(m.to);
      // Only what arrived while this node led this term: the new leader's reckoning of a
      // node it has not heard since it was elected (the previous leader: only the guard,
      // sched::HoldClock) must not be outlived by a grant of an older stamp. And only what
      // arrived within a hold: older, it grants nothing, and after the peer rebooted (its
      // monotonic clock restarted) it could look like a time the new process stamped.
      if (it != peer_hold_sent_.end() && it->second.leader_term == raft_->term().value() &&
          now_ms() - it->second.received_ms < cfg_.timers.hold_ms) {
        m.hold_granted = it->second.sent;
      }
    }
  }

  // A grant from the leader this node follows renews its hold from the moment it sent what
  // the leader received. Only a time this process stamped counts: not one from before it
  // started, nor from the future (a stamp the leader kept from an earlier boot).
  void take_hold_grant(NodeId from, const raft::Message& m) {
    if (m.hold_granted == 0 || is_leader() || raft_->leader() != from || m.term != raft_->term()) {
      return;
    }
    const int64_t granted = static_cast<int64_t>(m.hold_granted);
    if (granted < started_ms_ || granted > now_ms()) return;
    last_leader_contact_ =
        std::max(last_leader_contact_, Clock::time_point(std::chrono::milliseconds(granted)));
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
    last_heard_[from] = now_ms();
    if (m->hold_sent != 0) {
      peer_hold_sent_[from] = {m->hold_sent, is_leader() ? raft_->term().value() : 0, now_ms()};
    }
    Status s = raft_->step(*m);
    take_hold_grant(from, *m);
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

  // ------------------------------------------------------------------ store host
  Status propose(std::string data) override {
    Status st = raft_->propose(std::move(data));
    if (st.ok()) schedule_drive();
    return st;
  }

  Status read_index(std::string context) override {
    if (raft_->leader() == kNoNode) return err(Errc::kUnavailable, "no leader known");
    raft_->read_index(std::move(context));
    schedule_drive();
    return Status();
  }

  // ------------------------------------------------------------------ cluster host
  bool is_leader() const override { return raft_->role() == raft::StateRole::kLeader; }
  // The lease in time too (lease_deadline): a leader resumed after a stall does not plan or
  // fence on a lease that ran out while it was stopped. Never the hold it carried over.
  bool has_quorum() const override {
    auto d = lease_deadline();
    return d && Clock::now() < *d;
  }
  // Measured from when this node sent the latest message the leader says it received
  // (take_hold_grant), which is no later than the leader's reckoning starts (DESIGN.md
  // "Holds", sched::HoldClock).
  bool hold_valid() const override {
    auto d = hold_deadline();
    return d && Clock::now() < *d;
  }
  int64_t hold_until_ms() const override {
    auto d = hold_deadline();
    return d ? std::chrono::duration_cast<std::chrono::milliseconds>(d->time_since_epoch()).count()
             : 0;
  }
  // When this node's hold ends unless renewed; nullopt: it holds none. A leader holds by
  // its lease, and until that is established by the hold it had as a follower: that one
  // came from the previous leader's grant, which that leader's reckoning covers, and every
  // later leader's too (it waits a hold from its election, and could be elected only once
  // the lease the grant was given under had ended). Without it a follower made leader
  // dropped its VIPs for ~150 ms, until its first heartbeats were acknowledged.
  std::optional<Clock::time_point> hold_deadline() const {
    auto follower = follower_hold_deadline();
    if (!is_leader()) return follower;
    auto lease = lease_deadline();
    if (!lease) return follower;
    return std::max(*lease, follower);
  }
  // A leader's lease (raft.h) in time rather than in ticks: from when the tick of the
  // heartbeats a quorum acknowledged began, election_tick - 1 tick periods shortened by the
  // drift. Ticks stop while the process is stopped (SIGSTOP, a stall) and do not catch up;
  // time does not stop, so a leader that resumes does not count a lease that ran out
  // meanwhile. nullopt when this node does not lead with a valid lease.
  std::optional<Clock::time_point> lease_deadline() const {
    if (!is_leader() || !raft_->lease_valid()) return std::nullopt;
    auto e = raft_->lease_expiry_tick();
    const uint64_t span = election_tick_ - 1;
    if (!e || *e < span) return std::nullopt;
    for (auto it = tick_times_.rbegin(); it != tick_times_.rend(); ++it) {
      if (it->first != *e - span) continue;
      return it->second +
             std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(
                 static_cast<double>(span * cfg_.timers.tick_ms) /
                 (1.0 + cfg_.timers.clock_drift)));
    }
    return std::nullopt;
  }
  // A follower's hold does not need a leader known right now: what bounds it is the last
  // grant, which every leader's reckoning covers (the one that granted it counts from
  // later, a new one from its election, which is later still). Losing it when a new term
  // starts, before its leader is known, would drop VIPs for nothing at every election.
  // It ends hold_guard_ms early: what it stops on losing it has that long before the
  // leader's reckoning ends too (found by tests/sim_cluster).
  Clock::time_point follower_hold_deadline() const {
    return last_leader_contact_ +
           std::chrono::milliseconds(cfg_.timers.hold_ms - cfg_.timers.hold_guard_ms);
  }
  std::optional<int64_t> last_heard_ms(const std::string& node) const override {
    for (const auto& [id, name] : peer_names_) {
      if (name != node) continue;
      auto it = last_heard_.find(id);
      if (it == last_heard_.end()) return std::nullopt;
      return it->second;
    }
    return std::nullopt;
  }
  int64_t leader_since_ms() const override { return leader_since_ms_; }
  std::string previous_leader() const override { return previous_leader_; }
  uint64_t hold_generation() const override { return hold_generation_; }

  static int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
        .count();
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
    j["applied"] = store_->applied().value();
    j["revision"] = store_->revision();
    j["compact_revision"] = store_->compact_revision();
    j["first_index"] = raft_->first_index().value();
    j["last_index"] = raft_->last_index().value();
    j["snapshot_index"] = last_snapshot_index_.value();
    j["keys"] = store_->key_count();
    j["leases"] = store_->lease_count();
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
    if (store_->handle(req, respond, now_ms())) return;
    if (registry_->handle(req, respond, now_ms())) return;
    if (cluster_->handle(req, respond, now_ms())) return;
    respond(error_response(404, "not_found",
                           "no such endpoint: " + req.method + " " + std::string(target)));
  }

  static api::HttpResponse method_not_allowed(const api::HttpRequest& req,
                                              std::string_view allowed) {
    return error_response(405, "method_not_allowed",
                          req.method + " is not allowed on " + req.target +
                              " (allowed: " + std::string(allowed) + ")");
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
  std::unique_ptr<StoreService> store_;
  std::unique_ptr<RegistryService> registry_;  // after store_: destroyed first
  std::unique_ptr<ClusterService> cluster_;    // after store_: destroyed first
  std::map<NodeId, int64_t> last_heard_;       // steady ms of the last message per peer
  Clock::time_point last_leader_contact_{};    // the send of the latest granted message
  uint64_t election_tick_ = 2;
  std::deque<std::pair<uint64_t, Clock::time_point>> tick_times_;  // (tick, when it began)
  struct HoldStamp {
    uint64_t sent = 0;         // the peer's hold_sent
    uint64_t leader_term = 0;  // the term this node led when it arrived (0: not leading)
    int64_t received_ms = 0;   // now_ms() at arrival
  };
  std::map<NodeId, HoldStamp> peer_hold_sent_;  // of the last message per peer
  const int64_t started_ms_ = now_ms();
  bool was_leader_ = false;
  int64_t leader_since_ms_ = 0;
  NodeId followed_leader_;  // the last leader this node followed, and its term
  uint64_t followed_term_ = 0;
  std::string previous_leader_;   // as leader: sched::HoldClock's previous leader
  uint64_t hold_generation_ = 0;  // bumped on every step-down (ClusterHost)
  std::map<NodeId, std::string> peer_names_;
  std::map<NodeId, std::string> peer_api_;
  NodeId known_leader_;
  Term last_applied_term_;
  LogIndex last_snapshot_index_;
  static constexpr int64_t kSnapshotRetryMs = 5000;
  BackgroundJob snapshot_job_;  // declared after wal_: destroyed (joined) before it
  uint64_t last_snapshot_bytes_ = 0;
  uint64_t log_bytes_applied_ = 0;      // entry bytes applied since start
  uint64_t log_bytes_at_snapshot_ = 0;  // log_bytes_applied_ at the last snapshot
  int64_t snapshot_retry_at_ms_ = 0;
  std::weak_ptr<const std::string> sent_snapshot_data_;
  raft::SnapshotMeta sent_snapshot_meta_;
  bool drive_posted_ = false;
  bool stopping_ = false;
  bool leaving_ = false;  // a signal came: shutting down (wait_for_signal)
  Clock::time_point leave_deadline_;
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
