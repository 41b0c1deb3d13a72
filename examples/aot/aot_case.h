// The file the JIT side writes and the AOT program checks against: the input, the weights and the
// JIT's output of one run, as raw native-endian values behind a small header. Plain C++: the AOT
// program includes it and links nothing of flashjit.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace aot_case {

inline constexpr char kMagic[8] = {'F', 'J', 'A', 'O', 'T', 'C', '1', '\n'};

template <typename T>
struct Case {
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t seq_len = 0;
  std::vector<T> x, wq, wk, wv, wo, bo, y;  // y: the JIT's output

  // Sizes every array from batch, channels and seq_len.
  void resize() {
    const auto io = static_cast<size_t>(batch * seq_len * channels);
    const auto cc = static_cast<size_t>(channels * channels);
    x.resize(io);
    y.resize(io);
    for (std::vector<T>* w : {&wq, &wk, &wv, &wo}) w->resize(cc);
    bo.resize(static_cast<size_t>(channels));
  }
  std::vector<std::vector<T>*> arrays() { return {&x, &wq, &wk, &wv, &wo, &bo, &y}; }
};

// Returns an error message, or "" on success.
template <typename T>
std::string write(const std::string& path, Case<T>& c) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return "cannot create " + path;
  bool ok = std::fwrite(kMagic, 1, sizeof kMagic, f) == sizeof kMagic;
  const int64_t sizes[] = {c.batch, c.channels, c.seq_len, static_cast<int64_t>(sizeof(T))};
  ok = ok && std::fwrite(sizes, sizeof sizes, 1, f) == 1;
  for (std::vector<T>* a : c.arrays()) ok = ok && std::fwrite(a->data(), sizeof(T), a->size(), f) == a->size();
  ok = std::fclose(f) == 0 && ok;
  return ok ? "" : "cannot write " + path;
}

template <typename T>
std::string read(const std::string& path, Case<T>& c) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return "cannot open " + path;
  char magic[sizeof kMagic] = {};
  int64_t sizes[4] = {};
  bool ok = std::fread(magic, 1, sizeof magic, f) == sizeof magic &&
            std::memcmp(magic, kMagic, sizeof kMagic) == 0 && std::fread(sizes, sizeof sizes, 1, f) == 1 &&
            sizes[0] > 0 && sizes[1] > 0 && sizes[2] > 0 && sizes[3] == static_cast<int64_t>(sizeof(T));
  if (ok) {
    c.batch = sizes[0];
    c.channels = sizes[1];
    c.seq_len = sizes[2];
    c.resize();
    for (std::vector<T>* a : c.arrays()) ok = ok && std::fread(a->data(), sizeof(T), a->size(), f) == a->size();
    ok = ok && std::fgetc(f) == EOF;
  }
  std::fclose(f);
  return ok ? "" : path + ": not a case file of this element type, or truncated";
}

}  // namespace aot_case
