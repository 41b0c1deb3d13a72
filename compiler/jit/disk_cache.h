// The on-disk half of the kernel cache: one file per key (cache_entry.h) in the cache directory,
// written to a temporary file in the same directory and renamed into place, so that readers, and
// processes racing on the same key, see either no entry or a complete one. Entries are not
// fsynced: one that a crash leaves damaged fails its checks on load and is rebuilt.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "compiler/jit/cache_entry.h"

namespace flashjit::jit {

// $FLASHJIT_CACHE_DIR, else $XDG_CACHE_HOME/flashjit, else $HOME/.cache/flashjit; empty when none
// of the three is set.
std::filesystem::path cache_directory();

// <dir>/<key>.fjk
std::filesystem::path entry_path(const std::filesystem::path& dir, const std::string& key);

struct DiskLookup {
  std::vector<std::string> objects;  // the verified objects; none when there is no usable entry
  std::string problem;  // why an existing entry was rejected; empty when it was fine or absent
};

// Reads the entry for expected.key and checks it (format, size, checksum, every metadata field).
DiskLookup load_entry(const std::filesystem::path& dir, const EntryMetadata& expected);

// Writes the entry atomically, creating `dir` if needed. Returns "" on success, otherwise why it
// could not be written (no temporary file is left behind).
std::string store_entry(const std::filesystem::path& dir, const EntryMetadata& metadata,
                        const std::vector<std::string_view>& objects);

// What `flashjit cache --list` shows of one entry or leftover temporary file.
struct EntryListing {
  std::filesystem::path path;
  uintmax_t bytes = 0;
  std::chrono::system_clock::time_point modified;
  std::optional<EntryMetadata> metadata;  // absent when the entry is damaged or temporary
  std::string problem;                    // why, when damaged
  bool temporary = false;  // a write's temporary file, left by a killed process or in progress
  bool directory = false;  // a directory under an entry's name: no rename can replace it
};

// Every entry and temporary file of `dir`, oldest first; an absent directory has none. Throws
// IoError when `dir` exists but cannot be listed.
std::vector<EntryListing> list_entries(const std::filesystem::path& dir);

// Removes the entries and leftover temporary files of `dir`, and nothing else (the directory may
// be shared with other files). Returns how many files were removed; throws IoError when `dir`
// cannot be listed or a file cannot be removed.
std::size_t clear_entries(const std::filesystem::path& dir);

}  // namespace flashjit::jit
