// PosixEnv: the Env over real POSIX syscalls; every error names the call, path and errno.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/env.h"

namespace vigil {
namespace {

ErrorValue posix_error(std::string_view op, const std::string& path, int errnum) {
  std::string msg(op);
  msg += ' ';
  msg += path;
  msg += ": ";
  msg += std::strerror(errnum);
  return err(errnum == ENOENT ? Errc::kNotFound : Errc::kIoError, std::move(msg));
}

// Retries on EINTR, which is never a real failure of these calls.
int open_retry(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path, flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

Status fsync_path(const std::string& path, int flags, bool data_only) {
  const int fd = open_retry(path.c_str(), flags);
  if (fd < 0) return posix_error("open", path, errno);
  const int rc = data_only ? ::fdatasync(fd) : ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) return posix_error(data_only ? "fdatasync" : "fsync", path, saved);
  return Status();
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size), started_(size), waited_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status append(std::string_view data) override {
    if (fd_ < 0) return err(Errc::kIoError, "write " + path_ + ": file is closed");
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return posix_error("write", path_, errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
      size_ += static_cast<uint64_t>(n);
    }
    return Status();
  }

  Status sync() override {
    if (fd_ < 0) return err(Errc::kIoError, "fdatasync " + path_ + ": file is closed");
    if (::fdatasync(fd_) != 0) return posix_error("fdatasync", path_, errno);
    return Status();
  }

  Status write_behind() override {
    if (fd_ < 0) return err(Errc::kIoError, "sync_file_range " + path_ + ": file is closed");
    if (size_ <= started_) return Status();
    auto range = [&](uint64_t from, uint64_t to, unsigned flags) {
      return ::sync_file_range(fd_, static_cast<off_t>(from), static_cast<off_t>(to - from),
                               flags) == 0
                 ? Status()
                 : posix_error("sync_file_range", path_, errno);
    };
    if (started_ > waited_) {
      RETURN_IF_ERROR(
          range(waited_, started_,
                SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
      waited_ = started_;
    }
    RETURN_IF_ERROR(range(started_, size_, SYNC_FILE_RANGE_WRITE));
    started_ = size_;
    return Status();
  }

  Status close() override {
    if (fd_ < 0) return err(Errc::kIoError, "close " + path_ + ": file is closed");
    const int rc = ::close(fd_);
    fd_ = -1;
    // Linux always releases the descriptor, even on error: never retry close().
    if (rc != 0 && errno != EINTR) return posix_error("close", path_, errno);
    return Status();
  }

  uint64_t size() const override { return size_; }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;
  uint64_t started_;  // write_behind(): bytes whose writeback was started
  uint64_t waited_;   // ... and waited for
};

class PosixEnv final : public Env {
 public:
  Status create_dir(const std::string& path) override {
    if (path.empty()) return err(Errc::kInvalidArgument, "create_dir: empty path");
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return Status();
      return err(Errc::kIoError, "mkdir " + path + ": exists and is not a directory");
    }
    const std::string parent = parent_of(path);
    if (parent != path) RETURN_IF_ERROR(create_dir(parent));
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      return posix_error("mkdir", path, errno);
    }
    // The new name lives in the parent: sync it so the directory survives a crash.
    return sync_dir(parent);
  }

  Result<std::vector<std::string>> list_dir(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return posix_error("opendir", path, errno);
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name(e->d_name);
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int saved = errno;
    ::closedir(d);
    if (saved != 0) return posix_error("readdir", path, saved);
    std::sort(names.begin(), names.end());
    return names;
  }

  Result<std::unique_ptr<WritableFile>> open_appendable(const std::string& path) override {
    return open_for_write(path, O_WRONLY | O_CREAT | O_APPEND);
  }

  Result<std::unique_ptr<WritableFile>> new_writable_file(const std::string& path) override {
    return open_for_write(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
  }

  Result<std::string> read_file(const std::string& path) override {
    ASSIGN_OR_RETURN(uint64_t size, file_size(path));
    return read_range(path, 0, size);
  }

  Result<std::string> read_range(const std::string& path, uint64_t offset, uint64_t n) override {
    const int fd = open_retry(path.c_str(), O_RDONLY);
    if (fd < 0) return posix_error("open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int saved = errno;
      ::close(fd);
      return posix_error("fstat", path, saved);
    }
    // Size the buffer by what the file holds, not by what the caller asked for.
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    const uint64_t want = offset >= size ? 0 : std::min(n, size - offset);
    std::string out(want, '\0');
    uint64_t done = 0;
    while (done < want) {
      const ssize_t got =
          ::pread(fd, out.data() + done, want - done, static_cast<off_t>(offset + done));
      if (got < 0) {
        if (errno == EINTR) continue;
        const int saved = errno;
        ::close(fd);
        return posix_error("pread", path, saved);
      }
      if (got == 0) break;  // the file shrank under us
      done += static_cast<uint64_t>(got);
    }
    ::close(fd);
    out.resize(done);
    return out;
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return posix_error("rename", from + " -> " + to, errno);
    }
    return Status();
  }

  Status remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return posix_error("unlink", path, errno);
    return Status();
  }

  Status truncate(const std::string& path, uint64_t size) override {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
      return posix_error("truncate", path, errno);
    }
    return fsync_path(path, O_WRONLY, /*data_only=*/false);
  }

  Status sync_dir(const std::string& path) override {
    return fsync_path(path, O_RDONLY | O_DIRECTORY, /*data_only=*/false);
  }

  Result<uint64_t> file_size(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return posix_error("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  bool exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

 private:
  Result<std::unique_ptr<WritableFile>> open_for_write(const std::string& path, int flags) {
    const int fd = open_retry(path.c_str(), flags, 0644);
    if (fd < 0) return posix_error("open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int saved = errno;
      ::close(fd);
      return posix_error("fstat", path, saved);
    }
    return std::unique_ptr<WritableFile>(
        new PosixWritableFile(path, fd, static_cast<uint64_t>(st.st_size)));
  }
};

}  // namespace

Env& posix_env() {
  static PosixEnv* env = new PosixEnv();  // never destroyed: usable during static teardown
  return *env;
}

}  // namespace vigil
