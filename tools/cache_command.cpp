// `flashjit cache`: shows the kernel cache's entries (key, spec, CPU, size, age) or, with --clear,
// empties it. Only the cache's own files are touched: the directory may hold other things.
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "compiler/jit/disk_cache.h"
#include "ir/error.h"
#include "tools/commands.h"

namespace flashjit::tools {
namespace {

std::string human_bytes(uintmax_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024 * 1024));
}

std::string human_age(std::chrono::system_clock::time_point modified) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now() - modified)
                           .count();
  if (seconds < 120) return fmt::format("{}s", std::max<int64_t>(0, seconds));
  if (seconds < 2 * 3600) return fmt::format("{}m", seconds / 60);
  if (seconds < 2 * 86400) return fmt::format("{}h", seconds / 3600);
  return fmt::format("{}d", seconds / 86400);
}

std::filesystem::path require_directory() {
  std::filesystem::path dir = jit::cache_directory();
  if (dir.empty())
    throw InvalidArgument(
        "cache: no cache directory: expected FLASHJIT_CACHE_DIR, XDG_CACHE_HOME or HOME to be set");
  // A missing directory is an empty cache; anything else in its place cannot hold one, and a path
  // that cannot be looked at (a symlink loop, no permission) is not an empty cache either.
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(dir, error);
  // libstdc++ reports a path through a regular file (ENOTDIR) as not found too.
  if (status.type() == std::filesystem::file_type::not_found && error.value() != ENOTDIR) return dir;
  if (error)
    throw IoError(fmt::format("cache: cannot read {}: {}", dir.string(), error.message()));
  if (status.type() != std::filesystem::file_type::directory)
    throw IoError(fmt::format("cache: {}: expected a directory for the kernel cache, got another kind of file",
                              dir.string()));
  return dir;
}

void list_cache() {
  const std::filesystem::path dir = require_directory();
  const auto entries = jit::list_entries(dir);
  fmt::print("cache directory: {}\n", dir.string());
  if (entries.empty()) {
    fmt::print("no entries\n");
    return;
  }
  fmt::print("{:<32}  {:<40}  {:<12}  {:>10}  {:>5}\n", "key", "spec", "cpu", "size", "age");
  uintmax_t total = 0;
  for (const jit::EntryListing& e : entries) {
    total += e.bytes;
    const std::string key = (e.temporary ? e.path.filename() : e.path.stem()).string();
    if (e.metadata)
      fmt::print("{:<32}  {:<40}  {:<12}  {:>10}  {:>5}\n", key, e.metadata->spec, e.metadata->cpu,
                 human_bytes(e.bytes), human_age(e.modified));
    else if (e.temporary)
      fmt::print("{:<32}  {} ({}, {} old): --clear removes it\n", key, e.problem,
                 human_bytes(e.bytes), human_age(e.modified));
    else if (e.directory)  // a rebuild cannot rename its file over a directory
      fmt::print("{:<32}  a directory, so never rebuilt: remove it\n", key);
    else
      fmt::print("{:<32}  damaged, rebuilt on next use: {}\n", key, e.problem);
  }
  fmt::print("{} entr{}, {}\n", entries.size(), entries.size() == 1 ? "y" : "ies", human_bytes(total));
}

void clear_cache() {
  const std::filesystem::path dir = require_directory();
  const std::size_t removed = jit::clear_entries(dir);
  fmt::print("removed {} file{} from {}\n", removed, removed == 1 ? "" : "s", dir.string());
}

}  // namespace

void add_cache_command(CLI::App& app) {
  auto clear = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "cache", "Show the kernel cache's entries (the default) or empty it. The cache lives in "
               "FLASHJIT_CACHE_DIR, else $XDG_CACHE_HOME/flashjit, else ~/.cache/flashjit");
  // Listing is the default; the flag is there to be explicit, so it needs no storage (storage owned
  // by this function would be written by CLI11 after it returns).
  CLI::Option* list_flag = cmd->add_flag("--list")->description("List the entries: key, spec, CPU, size, age");
  cmd->add_flag("--clear", *clear, "Remove every entry")->excludes(list_flag);
  cmd->callback([clear] {
    if (*clear)
      clear_cache();
    else
      list_cache();
  });
}

}  // namespace flashjit::tools
