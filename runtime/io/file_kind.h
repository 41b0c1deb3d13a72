// What a path names, in words, for errors that refuse anything but a regular file: a reader would
// block on a FIFO, and a writer's rename would replace a device node or a symbolic link.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>
#include <sys/types.h>

namespace flashjit::io {

// "a regular file", "a directory", "a FIFO", "a character device", ... for an st_mode.
std::string_view file_kind(mode_t mode);

// The st_mode of what `path` itself names (a symbolic link is not followed), or nullopt when
// nothing is there. Throws IoError naming the path when it cannot be inspected for another reason.
std::optional<mode_t> existing_mode(const std::filesystem::path& path);

}  // namespace flashjit::io
