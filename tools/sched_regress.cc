// sched-regress: plans every case under tests/sched/cases and compares with the expected
// summary.out, scores.out and plan.dot (STYLE.md "Tests" 3).
//
//   sched-regress [--cases DIR] [--run NAME] [--update] [--quiet]
//
// A case directory holds input.yaml, an optional inject.txt, and either the three expected
// files or error.out (the expected error for an input that must be rejected). Every case
// also applies its plan and checks that planning the revised state yields no action.
// Exit status: 0 all passed, 1 a case failed, 2 bad usage.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "sched/inject.h"
#include "sched/io/case_yaml.h"
#include "sched/plan.h"
#include "sched/render.h"

namespace fs = std::filesystem;

namespace {

bool read_file(const fs::path& p, std::string* out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  return bool(out);
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == '\n') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// A unified diff (LCS over lines, 3 lines of context): expected → actual.
std::string unified_diff(const std::string& name, const std::string& expected,
                         const std::string& actual) {
  auto a = lines_of(expected);
  auto b = lines_of(actual);
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  struct Op {
    char tag;
    std::string text;
    size_t ai, bi;
  };
  std::vector<Op> ops;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      ops.push_back({' ', a[i], i, j});
      ++i, ++j;
    } else if (j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      ops.push_back({'+', b[j], i, j});
      ++j;
    } else {
      ops.push_back({'-', a[i], i, j});
      ++i;
    }
  }
  std::string out = "--- " + name + " (expected)\n+++ " + name + " (actual)\n";
  const size_t kContext = 3;
  size_t k = 0;
  while (k < ops.size()) {
    if (ops[k].tag == ' ') {
      ++k;
      continue;
    }
    size_t start = k >= kContext ? k - kContext : 0;
    size_t end = k;
    size_t quiet = 0;
    while (end < ops.size() && quiet <= 2 * kContext) {
      quiet = ops[end].tag == ' ' ? quiet + 1 : 0;
      ++end;
    }
    end = std::min(ops.size(), end - (quiet > kContext ? quiet - kContext : 0));
    size_t a_len = 0, b_len = 0;
    for (size_t x = start; x < end; ++x) {
      if (ops[x].tag != '+') ++a_len;
      if (ops[x].tag != '-') ++b_len;
    }
    out += "@@ -" + std::to_string(ops[start].ai + 1) + "," + std::to_string(a_len) + " +" +
           std::to_string(ops[start].bi + 1) + "," + std::to_string(b_len) + " @@\n";
    for (size_t x = start; x < end; ++x) out += std::string(1, ops[x].tag) + ops[x].text + "\n";
    k = end;
  }
  return out;
}

struct Outcome {
  bool ok = true;
  std::string report;
};

Outcome run_case(const fs::path& dir, bool update) {
  Outcome o;
  const std::string name = dir.filename().string();
  auto failed = [&](const std::string& why) {
    o.ok = false;
    o.report += "FAIL " + name + ": " + why + "\n";
  };
  std::string input;
  if (!read_file(dir / "input.yaml", &input)) {
    failed("cannot read input.yaml");
    return o;
  }
  std::vector<std::pair<std::string, std::string>> outputs;  // file → actual text
  auto snapshot = vigil::sched::parse_snapshot_yaml(input, name + "/input.yaml");
  vigil::Status status;
  if (snapshot) {
    std::string inject;
    if (read_file(dir / "inject.txt", &inject)) {
      status = vigil::sched::apply_inject(inject, name + "/inject.txt", *snapshot);
    }
  } else {
    status = snapshot.error();
  }
  if (!status.ok() || fs::exists(dir / "error.out")) {
    outputs.emplace_back("error.out", status.ok() ? "(no error)\n" : status.message() + "\n");
  } else {
    auto p = vigil::sched::plan(*snapshot);
    if (!p) {
      outputs.emplace_back("error.out", p.error().message() + "\n");
    } else {
      auto revised = vigil::sched::apply_plan(*snapshot, *p);
      outputs.emplace_back("summary.out", vigil::sched::render_summary(*snapshot, *p, revised));
      outputs.emplace_back("scores.out", vigil::sched::render_scores(*p));
      outputs.emplace_back("plan.dot", vigil::sched::render_dot(*p));
      auto again = vigil::sched::plan(revised);
      if (!again) {
        failed("planning the revised state failed: " + again.error().message());
      } else if (!again->actions.empty()) {
        std::string acts;
        for (const auto& a : again->actions) acts += "\n    " + a.label() + " (" + a.reason + ")";
        failed("the revised state is not stable; planning it again asks for:" + acts);
      }
    }
  }
  for (const auto& [file, actual] : outputs) {
    fs::path path = dir / file;
    std::string expected;
    bool have = read_file(path, &expected);
    if (have && expected == actual) continue;
    if (update) {
      if (!write_file(path, actual)) failed("cannot write " + file);
      o.report += "updated " + name + "/" + file + "\n";
      continue;
    }
    if (!have) {
      failed("missing " + file + " (run with --update to create it)");
    } else {
      failed(file + " differs");
      o.report += unified_diff(name + "/" + file, expected, actual);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path cases = VIGIL_SCHED_CASES;
  std::string only;
  bool update = false;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--update") {
      update = true;
    } else if (a == "--quiet") {
      quiet = true;
    } else if ((a == "--run" || a == "--cases") && i + 1 < argc) {
      if (a == "--run") {
        only = argv[++i];
      } else {
        cases = argv[++i];
      }
    } else {
      std::cerr << "usage: sched-regress [--cases DIR] [--run NAME] [--update] [--quiet]\n";
      return 2;
    }
  }
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(cases, ec)) {
    if (e.is_directory() && (only.empty() || e.path().filename() == only)) {
      dirs.push_back(e.path());
    }
  }
  if (ec) {
    std::cerr << "sched-regress: cannot list " << cases << ": " << ec.message() << "\n";
    return 2;
  }
  std::sort(dirs.begin(), dirs.end());
  if (dirs.empty()) {
    std::cerr << "sched-regress: no case " << (only.empty() ? "" : "named " + only + " ")
              << "under " << cases << "\n";
    return 2;
  }
  int failures = 0;
  for (const auto& d : dirs) {
    Outcome o = run_case(d, update);
    if (!o.ok) ++failures;
    std::cout << o.report;
    if (o.ok && !quiet) std::cout << "ok   " << d.filename().string() << "\n";
  }
  std::cout << dirs.size() << " case(s), " << failures << " failed\n";
  return failures == 0 ? 0 : 1;
}
