// Helpers for the net tests: a temporary directory removed at the end of the test.
#pragma once

#include <string>

namespace vigil::net::testing {

// mkdtemp under $TMPDIR (or /tmp); removed recursively by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace vigil::net::testing
