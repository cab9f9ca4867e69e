// Fuzz driver for builds without libFuzzer: replays every file of a corpus directory, then
// a fixed number of deterministic mutations of each, through LLVMFuzzerTestOneInput.
// A crash or sanitizer report fails the ctest run; the seed corpus lives in git.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
uint64_t next(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
void run(const std::string& s) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p)) {
        std::ifstream f(e.path(), std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        inputs.push_back(ss.str());
      }
    }
  }
  inputs.push_back("");
  uint64_t seed = 42;
  const int kMutations = std::getenv("VIGIL_FUZZ_MUTATIONS")
                             ? std::atoi(std::getenv("VIGIL_FUZZ_MUTATIONS"))
                             : 2000;
  size_t runs = 0;
  for (const auto& in : inputs) {
    run(in);
    ++runs;
    for (int m = 0; m < kMutations; ++m) {
      std::string s = in;
      int edits = 1 + static_cast<int>(next(seed) % 4);
      for (int e = 0; e < edits; ++e) {
        uint64_t r = next(seed);
        switch (r % 4) {
          case 0:  // flip a byte
            if (!s.empty()) s[(r >> 8) % s.size()] ^= static_cast<char>(1 + (r >> 32) % 255);
            break;
          case 1:  // truncate
            if (!s.empty()) s.resize((r >> 8) % s.size());
            break;
          case 2:  // insert a random byte
            s.insert(s.begin() + static_cast<long>(s.empty() ? 0 : (r >> 8) % (s.size() + 1)),
                     static_cast<char>(r >> 40));
            break;
          case 3:  // set a byte to an extreme value
            if (!s.empty()) s[(r >> 8) % s.size()] = (r & 0x100) ? '\xff' : '\0';
            break;
        }
      }
      run(s);
      ++runs;
    }
  }
  std::printf("fuzz driver: %zu inputs run without a crash\n", runs);
  return 0;
}
