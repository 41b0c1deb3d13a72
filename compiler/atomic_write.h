// Writing a file so that nobody ever sees it half written: the kernel cache's entries and the
// FLASHJIT_DUMP_DIR artefacts, both of which several threads or processes may write at once.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace flashjit {

// Writes `bytes` to a temporary file beside `path`, named <file name>.tmp.<pid>.<n>.<random> and
// created exclusively (a name another writer holds, or a file a killed writer left, is passed
// over), then renames it over `path`: readers and other writers see the old file, no file, or the
// whole new one. Returns "" on success, otherwise why not; no temporary file is left then. A
// non-empty `injected_failure` is reported as the write's error, as if the disk were full (fault
// injection).
std::string write_atomically(const std::filesystem::path& path, std::string_view bytes,
                             std::string_view injected_failure = {});

}  // namespace flashjit
