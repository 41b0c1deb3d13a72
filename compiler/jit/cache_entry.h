// One disk cache entry: a text header describing the object, a blank line, then the object bytes.
//
//   flashjit-kernel-cache 3
//   checksum 0123456789abcdef   (XXH3-64 of every byte after this line: header and objects)
//   key 3f0c...            (32 hex digits, also the file name)
//   key_text spec=...;...  (the CacheKey text)
//   spec c320_h8_n4096_f32_image_flash
//   cpu znver5
//   features +adx,+aes,...
//   llvm 19.1.7
//   codegen 1
//   kernels fj_..._project_qkv,fj_..._attention,fj_..._project_out
//   object_sizes 123456,65432           (a plan compiled in groups has one object per group)
//
//   <the ELF objects, back to back>
//
// One file, so that a rename publishes header and object together.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <llvm/Support/Error.h>

#include "compiler/jit/cache_key.h"
#include "compiler/kernel_plan.h"

namespace flashjit::jit {

// What an entry says about the plan its object was built for. On load every field must equal the
// one the plan asks for.
struct EntryMetadata {
  std::string key;
  std::string key_text;
  std::string spec;
  std::string cpu;
  std::string features;
  std::string llvm_version;
  int codegen_version = 0;
  std::vector<std::string> kernel_names;

  bool operator==(const EntryMetadata&) const = default;
};

EntryMetadata expected_metadata(const KernelPlan& plan, const CacheKey& key,
                                const BuildIdentity& build = current_build());

std::string serialize_entry(const EntryMetadata& metadata,
                            const std::vector<std::string_view>& objects);

struct ParsedEntry {
  EntryMetadata metadata;
  std::vector<std::string_view> objects;  // point into the parsed bytes; never empty
};

// Checks the format, the object's size and its checksum. The error says what is wrong ("empty",
// "truncated: ...", "entry checksum ...", "metadata without object", ...).
llvm::Expected<ParsedEntry> parse_entry(std::string_view bytes);

// Success when `found` is the entry `expected` asks for; otherwise an error naming the first field
// that differs, with both values.
llvm::Error check_metadata(const EntryMetadata& found, const EntryMetadata& expected);

}  // namespace flashjit::jit
