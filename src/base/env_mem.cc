// MemEnv: an in-memory filesystem that tracks synced bytes and directory entries so tests
// and the simulator can crash it (see the model in env.h).
#include <algorithm>

#include "base/env.h"

namespace vigil {

// One file's bytes; `synced` bytes of `data` survive a crash (always a prefix, see env.h).
struct MemEnv::File {
  std::string data;
  uint64_t synced = 0;
};

namespace {

// "/a/b/" → "/a/b"; keeps "/" as is.
std::string normalize(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

ErrorValue not_found(std::string_view op, const std::string& path) {
  return err(Errc::kNotFound, std::string(op) + " " + path + ": No such file or directory");
}

ErrorValue injected(std::string_view op, const std::string& path) {
  return err(Errc::kIoError, std::string(op) + " " + path + ": Input/output error (injected)");
}

}  // namespace

// A handle on a File. It stays valid across renames and removes (like an fd) but dies with
// a crash: the process that held it is gone.
class MemEnv::Handle final : public WritableFile {
 public:
  Handle(MemEnv* env, std::string path, std::shared_ptr<File> file)
      : env_(env), path_(std::move(path)), file_(std::move(file)), epoch_(env->epoch_) {}

  Status append(std::string_view data) override {
    RETURN_IF_ERROR(check("write"));
    if (env_->fail_writes_) return injected("write", path_);
    file_->data.append(data);
    return Status();
  }
  Status sync() override {
    RETURN_IF_ERROR(check("fdatasync"));
    if (env_->fail_writes_ || env_->fail_syncs_) return injected("fdatasync", path_);
    file_->synced = file_->data.size();
    ++env_->file_syncs_;
    return Status();
  }
  Status close() override {
    RETURN_IF_ERROR(check("close"));
    closed_ = true;
    return Status();
  }
  uint64_t size() const override { return file_->data.size(); }

 private:
  Status check(std::string_view op) const {
    if (closed_) return err(Errc::kIoError, std::string(op) + " " + path_ + ": file is closed");
    if (epoch_ != env_->epoch_) {
      return err(Errc::kIoError, std::string(op) + " " + path_ + ": handle predates a crash");
    }
    return Status();
  }

  MemEnv* env_;
  std::string path_;
  std::shared_ptr<File> file_;
  uint64_t epoch_;
  bool closed_ = false;
};

MemEnv::MemEnv() { dirs_["/"]; }
MemEnv::~MemEnv() = default;

Result<MemEnv::Dir*> MemEnv::dir_of(const std::string& path, std::string* name) {
  const std::string p = normalize(path);
  const std::string parent = parent_of(p);
  auto it = dirs_.find(parent);
  if (it == dirs_.end()) return not_found("open", parent);
  *name = p.substr(p.find_last_of('/') + 1);
  if (name->empty() || dirs_.count(p) != 0) {
    return err(Errc::kIoError, p + ": is a directory");
  }
  return &it->second;
}

Result<std::shared_ptr<MemEnv::File>> MemEnv::find(const std::string& path) {
  std::string name;
  ASSIGN_OR_RETURN(Dir * dir, dir_of(path, &name));
  auto it = dir->live.find(name);
  if (it == dir->live.end()) return not_found("open", path);
  return it->second;
}

Status MemEnv::create_dir(const std::string& path) {
  const std::string p = normalize(path);
  if (p.empty() || p == "." || p == "/") return Status();
  if (dirs_.count(p) != 0) return Status();
  const std::string parent = parent_of(p);
  if (parent != p) RETURN_IF_ERROR(create_dir(parent));
  auto pit = dirs_.find(parent);
  if (pit != dirs_.end() && pit->second.live.count(p.substr(p.find_last_of('/') + 1)) != 0) {
    return err(Errc::kIoError, "mkdir " + p + ": exists and is not a directory");
  }
  dirs_[p];
  return Status();
}

Result<std::vector<std::string>> MemEnv::list_dir(const std::string& path) {
  const std::string p = normalize(path);
  auto it = dirs_.find(p);
  if (it == dirs_.end()) return not_found("opendir", path);
  std::vector<std::string> names;
  for (const auto& [name, file] : it->second.live) names.push_back(name);
  for (const auto& [sub, dir] : dirs_) {
    if (sub != p && parent_of(sub) == p) names.push_back(sub.substr(sub.find_last_of('/') + 1));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::unique_ptr<WritableFile>> MemEnv::open_appendable(const std::string& path) {
  std::string name;
  ASSIGN_OR_RETURN(Dir * dir, dir_of(path, &name));
  auto it = dir->live.find(name);
  std::shared_ptr<File> file;
  if (it != dir->live.end()) {
    file = it->second;
  } else {
    if (fail_writes_) return injected("open", path);
    file = std::make_shared<File>();
    dir->live[name] = file;
  }
  return std::unique_ptr<WritableFile>(new Handle(this, normalize(path), file));
}

Result<std::unique_ptr<WritableFile>> MemEnv::new_writable_file(const std::string& path) {
  std::string name;
  ASSIGN_OR_RETURN(Dir * dir, dir_of(path, &name));
  if (fail_writes_) return injected("open", path);
  auto it = dir->live.find(name);
  std::shared_ptr<File> file;
  if (it != dir->live.end()) {
    // O_TRUNC: modelled as durable at once (documented simplification; the WAL only
    // truncates temp files whose content does not matter).
    file = it->second;
    file->data.clear();
    file->synced = 0;
  } else {
    file = std::make_shared<File>();
    dir->live[name] = file;
  }
  return std::unique_ptr<WritableFile>(new Handle(this, normalize(path), file));
}

Result<std::string> MemEnv::read_file(const std::string& path) {
  ASSIGN_OR_RETURN(std::shared_ptr<File> file, find(path));
  return file->data;
}

Result<std::string> MemEnv::read_range(const std::string& path, uint64_t offset, uint64_t n) {
  ASSIGN_OR_RETURN(std::shared_ptr<File> file, find(path));
  if (offset >= file->data.size()) return std::string();
  return file->data.substr(offset, std::min<uint64_t>(n, file->data.size() - offset));
}

Status MemEnv::rename(const std::string& from, const std::string& to) {
  std::string from_name;
  std::string to_name;
  ASSIGN_OR_RETURN(Dir * from_dir, dir_of(from, &from_name));
  ASSIGN_OR_RETURN(Dir * to_dir, dir_of(to, &to_name));
  auto it = from_dir->live.find(from_name);
  if (it == from_dir->live.end()) return not_found("rename", from);
  if (fail_writes_) return injected("rename", from);
  std::shared_ptr<File> file = it->second;
  from_dir->live.erase(it);
  to_dir->live[to_name] = std::move(file);
  return Status();
}

Status MemEnv::remove(const std::string& path) {
  std::string name;
  ASSIGN_OR_RETURN(Dir * dir, dir_of(path, &name));
  if (dir->live.erase(name) == 0) return not_found("unlink", path);
  return Status();
}

Status MemEnv::truncate(const std::string& path, uint64_t size) {
  ASSIGN_OR_RETURN(std::shared_ptr<File> file, find(path));
  if (fail_writes_) return injected("truncate", path);
  file->data.resize(size, '\0');
  file->synced = file->data.size();  // the contract: durable on return
  return Status();
}

Status MemEnv::sync_dir(const std::string& path) {
  auto it = dirs_.find(normalize(path));
  if (it == dirs_.end()) return not_found("open", path);
  if (fail_writes_) return injected("fsync", path);
  it->second.durable = it->second.live;
  return Status();
}

Result<uint64_t> MemEnv::file_size(const std::string& path) {
  ASSIGN_OR_RETURN(std::shared_ptr<File> file, find(path));
  return static_cast<uint64_t>(file->data.size());
}

bool MemEnv::exists(const std::string& path) {
  const std::string p = normalize(path);
  if (dirs_.count(p) != 0) return true;
  return find(p).has_value();
}

void MemEnv::crash_for_test(Rng& rng, bool tear) {
  ++epoch_;
  // Iterate in map order so a seed replays the same tears.
  for (auto& [path, dir] : dirs_) dir.live = dir.durable;
  for (auto& [path, dir] : dirs_) {
    for (auto& [name, file] : dir.live) {
      if (file->data.size() == file->synced) continue;
      uint64_t keep = file->synced;
      if (tear) keep += rng.uniform(0, file->data.size() - file->synced);
      file->data.resize(keep);
      file->synced = keep;  // what is on the platter after a reboot is durable
    }
  }
}

Status MemEnv::corrupt_for_test(const std::string& path, uint64_t offset, std::string_view bytes) {
  ASSIGN_OR_RETURN(std::shared_ptr<File> file, find(path));
  if (offset > file->data.size() || bytes.size() > file->data.size() - offset) {
    return err(Errc::kOutOfRange, "corrupt_for_test " + path + ": range beyond end of file");
  }
  file->data.replace(offset, bytes.size(), bytes);
  return Status();
}

Result<uint64_t> MemEnv::synced_size_for_test(const std::string& path) {
  ASSIGN_OR_RETURN(std::shared_ptr<File> file, find(path));
  return file->synced;
}

}  // namespace vigil
