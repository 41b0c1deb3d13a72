#include "compiler/jit/cache_entry.h"

#include <charconv>
#include <functional>

#include <fmt/format.h>

namespace flashjit::jit {

namespace {

constexpr std::string_view kMagic = "flashjit-kernel-cache";
// 3: the checksum covers the header too (2 covered only the objects), so that `flashjit cache`
// finds a damaged header without knowing which plan the entry is for.
constexpr int kFormatVersion = 3;

llvm::Error fail(const std::string& message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    out.emplace_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// Up to 80 bytes of a damaged header for an error message, bytes outside printable ASCII as \xNN:
// the message reaches diagnostics and terminals (a NUL byte showed up on stdout).
std::string excerpt(std::string_view text) {
  std::string out;
  for (unsigned char c : text.substr(0, 80)) {
    if (c >= 0x20 && c < 0x7f)
      out += static_cast<char>(c);
    else
      out += fmt::format("\\x{:02x}", c);
  }
  return out;
}

bool is_hex(std::string_view text, size_t digits) {
  if (text.size() != digits) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

template <typename Int>
bool parse_int(std::string_view text, Int& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

// Reads "name value\n" lines in a fixed order from the front of the entry.
class HeaderReader {
 public:
  explicit HeaderReader(std::string_view bytes) : rest_(bytes) {}

  llvm::Expected<std::string_view> line() {
    const size_t end = rest_.find('\n');
    if (end == std::string_view::npos)
      return fail(fmt::format("truncated header: no end of line after {} bytes", consumed_));
    std::string_view line = rest_.substr(0, end);
    rest_.remove_prefix(end + 1);
    consumed_ += end + 1;
    return line;
  }

  // The value of the next line, which must be "<name> <value>" and satisfy `valid`.
  llvm::Expected<std::string_view> field(std::string_view name,
                                         const std::function<bool(std::string_view)>& valid) {
    auto text = line();
    if (!text) return text.takeError();
    if (!text->starts_with(name) || text->size() <= name.size() || (*text)[name.size()] != ' ')
      return fail(fmt::format("header field {}: expected '{} <value>', got '{}'", name, name, excerpt(*text)));
    std::string_view value = text->substr(name.size() + 1);
    if (!valid(value))
      return fail(fmt::format("header field {}: malformed value '{}'", name, excerpt(value)));
    return value;
  }

  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
  size_t consumed_ = 0;
};

bool non_empty(std::string_view v) { return !v.empty(); }

}  // namespace

EntryMetadata expected_metadata(const KernelPlan& plan, const CacheKey& key,
                                const BuildIdentity& build) {
  EntryMetadata m;
  m.key = key.hash;
  m.key_text = key.text;
  m.spec = plan.spec.key();
  m.cpu = plan.target.cpu;
  m.features = plan.target.features;
  m.llvm_version = build.llvm_version;
  m.codegen_version = build.codegen_version;
  for (const PlannedKernel& k : plan.kernels) m.kernel_names.push_back(k.name);
  return m;
}

std::string serialize_entry(const EntryMetadata& m, const std::vector<std::string_view>& objects) {
  std::string bytes;
  std::vector<std::string> sizes;
  for (std::string_view object : objects) {
    bytes.append(object);
    sizes.push_back(std::to_string(object.size()));
  }
  std::string covered = fmt::format(
      "key {}\nkey_text {}\nspec {}\ncpu {}\nfeatures {}\nllvm {}\ncodegen {}\nkernels {}\n"
      "object_sizes {}\n\n",
      m.key, m.key_text, m.spec, m.cpu, m.features, m.llvm_version, m.codegen_version,
      join(m.kernel_names), join(sizes));
  covered.append(bytes);
  return fmt::format("{} {}\nchecksum {}\n", kMagic, kFormatVersion, checksum_hex(covered)) +
         covered;
}

llvm::Expected<ParsedEntry> parse_entry(std::string_view bytes) {
  if (bytes.empty()) return fail("empty file");
  if (!bytes.starts_with(kMagic))
    return fail(fmt::format("not a flashjit cache entry: expected it to start with '{}'", kMagic));
  HeaderReader in(bytes);
  auto magic = in.line();
  if (!magic) return magic.takeError();
  const std::string want_magic = fmt::format("{} {}", kMagic, kFormatVersion);
  if (*magic != want_magic)
    return fail(fmt::format("entry format '{}', expected '{}'", excerpt(*magic), want_magic));

  auto checksum = in.field("checksum", [](std::string_view v) { return is_hex(v, 16); });
  if (!checksum) return checksum.takeError();
  const std::string_view covered = in.rest();

  ParsedEntry entry;
  EntryMetadata& m = entry.metadata;
  const auto hex32 = [](std::string_view v) { return is_hex(v, 32); };
  int codegen = 0;
  std::vector<uint64_t> object_sizes;
  uint64_t object_size = 0;  // their sum
  const auto sizes = [&](std::string_view v) {
    for (const std::string& text : split(v)) {
      uint64_t size = 0;
      if (!parse_int(text, size) || size == 0 || size > (uint64_t{1} << 40)) return false;
      object_sizes.push_back(size);
      object_size += size;
    }
    return true;
  };
  const std::vector<std::pair<const char*, std::function<bool(std::string_view)>>> fields = {
      {"key", hex32},
      {"key_text", non_empty},
      {"spec", non_empty},
      {"cpu", non_empty},
      {"features", [](std::string_view) { return true; }},  // a CPU may have no features
      {"llvm", non_empty},
      {"codegen", [&](std::string_view v) { return parse_int(v, codegen); }},
      {"kernels", non_empty},
      {"object_sizes", sizes},
  };
  std::vector<std::string_view> values;
  for (const auto& [name, valid] : fields) {
    auto value = in.field(name, valid);
    if (!value) return value.takeError();
    values.push_back(*value);
  }
  auto blank = in.line();
  if (!blank) return blank.takeError();
  if (!blank->empty()) return fail("header: expected a blank line after object_sizes");

  m.key = values[0];
  m.key_text = values[1];
  m.spec = values[2];
  m.cpu = values[3];
  m.features = values[4];
  m.llvm_version = values[5];
  m.codegen_version = codegen;
  m.kernel_names = split(values[7]);

  const std::string_view bytes_read = in.rest();
  if (bytes_read.empty()) return fail(fmt::format("metadata without object (header says {} bytes)", object_size));
  if (bytes_read.size() < object_size)
    return fail(fmt::format("truncated: header says {} object bytes, file has {}", object_size,
                            bytes_read.size()));
  if (bytes_read.size() > object_size)
    return fail(fmt::format("{} bytes after the {}-byte object", bytes_read.size() - object_size,
                            object_size));
  const std::string actual = checksum_hex(covered);
  if (actual != *checksum)
    return fail(fmt::format("entry checksum {} differs from the header's {}", actual, *checksum));
  uint64_t at = 0;
  for (uint64_t size : object_sizes) {
    entry.objects.push_back(bytes_read.substr(at, size));
    at += size;
  }
  return entry;
}

llvm::Error check_metadata(const EntryMetadata& found, const EntryMetadata& expected) {
  const auto differs = [](const char* what, const std::string& got, const std::string& want) {
    return fail(fmt::format("built for {} '{}', expected '{}'", what, got.substr(0, 200),
                            want.substr(0, 200)));
  };
  if (found.key != expected.key) return differs("key", found.key, expected.key);
  if (found.cpu != expected.cpu) return differs("CPU", found.cpu, expected.cpu);
  if (found.features != expected.features)
    return differs("features", found.features, expected.features);
  if (found.llvm_version != expected.llvm_version)
    return differs("LLVM", found.llvm_version, expected.llvm_version);
  if (found.codegen_version != expected.codegen_version)
    return differs("codegen version", std::to_string(found.codegen_version),
                   std::to_string(expected.codegen_version));
  if (found.spec != expected.spec) return differs("spec", found.spec, expected.spec);
  if (found.kernel_names != expected.kernel_names)
    return differs("kernels", join(found.kernel_names), join(expected.kernel_names));
  if (found.key_text != expected.key_text)
    return differs("key text", found.key_text, expected.key_text);
  return llvm::Error::success();
}

}  // namespace flashjit::jit
