// Writes the seed corpora of raft_message_fuzz and wal_record_fuzz from real encoders, so
// the seeds follow the format when it changes. Usage: fuzz_seed_gen <tests/fuzz/corpus>.
#include <cstdio>
#include <fstream>
#include <string>

#include "raft/codec.h"
#include "storage/wal_format.h"

namespace {

using namespace vigil;
using namespace vigil::raft;

void write(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

Entry entry(uint64_t term, uint64_t index, EntryType type, std::string data) {
  Entry e;
  e.term = Term(term);
  e.index = LogIndex(index);
  e.type = type;
  e.data = std::move(data);
  return e;
}

SnapshotMeta meta(uint64_t index, uint64_t term) {
  SnapshotMeta m;
  m.index = LogIndex(index);
  m.term = Term(term);
  m.conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
  m.conf.learners = {NodeId(4)};
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  const std::string msg_dir = root + "/raft_message_fuzz/";
  const std::string wal_dir = root + "/wal_record_fuzz/";

  const ConfChange cc{ConfChangeType::kAddLearner, NodeId(4), "10.0.0.4:7000"};
  Message vote;
  vote.type = MsgType::kVote;
  vote.from = NodeId(1);
  vote.to = NodeId(2);
  vote.term = Term(5);
  vote.log_term = Term(4);
  vote.index = LogIndex(17);
  vote.context = "campaign-transfer";
  write(msg_dir + "vote", encode_message(vote));

  Message append;
  append.type = MsgType::kAppend;
  append.from = NodeId(1);
  append.to = NodeId(3);
  append.term = Term(5);
  append.log_term = Term(5);
  append.index = LogIndex(17);
  append.commit = LogIndex(16);
  append.entries = {entry(5, 18, EntryType::kNormal, "put k v"),
                    entry(5, 19, EntryType::kConfChange, encode_conf_change(cc)),
                    entry(5, 20, EntryType::kNormal, "")};
  write(msg_dir + "append", encode_message(append));

  Message resp;
  resp.type = MsgType::kAppendResp;
  resp.from = NodeId(3);
  resp.to = NodeId(1);
  resp.term = Term(5);
  resp.reject = true;
  resp.reject_hint = LogIndex(9);
  resp.lease_tick = 12345;
  write(msg_dir + "append_resp_reject", encode_message(resp));

  Message snap;
  snap.type = MsgType::kSnapshot;
  snap.from = NodeId(1);
  snap.to = NodeId(4);
  snap.term = Term(6);
  Snapshot s;
  s.meta = meta(100, 6);
  s.data = std::make_shared<const std::string>("serialized state machine");
  snap.snapshot = s;
  write(msg_dir + "snapshot", encode_message(snap));
  write(msg_dir + "conf_change", encode_conf_change(cc));

  std::string seg = storage::encode_segment_header();
  storage::append_record(&seg, meta(10, 2));
  storage::append_record(&seg, HardState{Term(3), NodeId(1), LogIndex(12)});
  for (uint64_t i = 11; i <= 14; ++i) {
    storage::append_record(&seg, entry(3, i, EntryType::kNormal, "data-" + std::to_string(i)));
  }
  storage::append_record(&seg, entry(3, 15, EntryType::kConfChange, encode_conf_change(cc)));
  storage::append_record(&seg, HardState{Term(3), NodeId(1), LogIndex(15)});
  write(wal_dir + "segment", seg);
  write(wal_dir + "segment_torn", seg.substr(0, seg.size() - 7));
  write(wal_dir + "header_only", storage::encode_segment_header());

  const std::string data = "snapshot payload";
  const std::string prefix = storage::encode_snapshot_file_prefix(meta(10, 2), data.size());
  write(wal_dir + "snapshot_file",
        prefix + data +
            storage::encode_snapshot_file_suffix(storage::snapshot_file_crc(prefix, data)));
  std::printf("wrote seeds under %s\n", root.c_str());
  return 0;
}
