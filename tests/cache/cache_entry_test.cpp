// The disk entry format: round trips, and every kind of damage is detected when the entry is read,
// with a message saying which. Also the directory listing and clearing of `flashjit cache`.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "compiler/jit/cache_entry.h"
#include "compiler/jit/disk_cache.h"
#include "ir/error.h"
#include "tests/cache/cache_test_support.h"

namespace flashjit {
namespace {

namespace fs = std::filesystem;

jit::EntryMetadata sample_metadata() {
  const KernelPlan plan = testing::small_plan();
  return jit::expected_metadata(plan, jit::make_cache_key(plan));
}

const std::string kObject = std::string("\x7f" "ELF", 4) + std::string(300, '\x01') + "tail";

std::string problem_of(const std::string& bytes, const jit::EntryMetadata& expected) {
  auto entry = jit::parse_entry(bytes);
  if (!entry) return llvm::toString(entry.takeError());
  if (auto err = jit::check_metadata(entry->metadata, expected)) return llvm::toString(std::move(err));
  return "";
}

TEST(CacheEntry, RoundTrips) {
  const jit::EntryMetadata m = sample_metadata();
  const std::string bytes = jit::serialize_entry(m, {kObject});
  auto entry = jit::parse_entry(bytes);
  ASSERT_TRUE(static_cast<bool>(entry)) << llvm::toString(entry.takeError());
  EXPECT_EQ(entry->metadata, m);
  EXPECT_EQ(entry->objects, std::vector<std::string_view>{kObject});
  EXPECT_EQ(problem_of(bytes, m), "");
}

// A plan compiled in groups stores one object per group, back to back, and gets them back apart.
TEST(CacheEntry, SeveralObjectsRoundTripApart) {
  const jit::EntryMetadata m = sample_metadata();
  const std::string second = "second object";
  const std::string bytes = jit::serialize_entry(m, std::vector<std::string_view>{kObject, second});
  EXPECT_NE(bytes.find(fmt::format("object_sizes {},{}\n", kObject.size(), second.size())),
            std::string::npos);
  auto entry = jit::parse_entry(bytes);
  ASSERT_TRUE(static_cast<bool>(entry)) << llvm::toString(entry.takeError());
  EXPECT_EQ(entry->objects, (std::vector<std::string_view>{kObject, second}));
  // Sizes that do not add up to the bytes, or an empty object, are damage.
  const auto resized = [&](const std::string& sizes) {
    std::string damaged = bytes;
    const size_t at = damaged.find("object_sizes ") + 13;
    damaged.replace(at, damaged.find('\n', at) - at, sizes);
    return problem_of(damaged, m);
  };
  EXPECT_NE(resized(fmt::format("{},{}", kObject.size(), second.size() + 1)).find("truncated"),
            std::string::npos);
  EXPECT_NE(resized(fmt::format("{},{}", kObject.size() - 1, second.size())).find("bytes after"),
            std::string::npos);
  EXPECT_NE(resized(fmt::format("0,{}", kObject.size() + second.size())).find("object_sizes"),
            std::string::npos);
}

TEST(CacheEntry, DetectsEachKindOfDamage) {
  const jit::EntryMetadata m = sample_metadata();
  const std::string good = jit::serialize_entry(m, {kObject});
  const size_t header = good.size() - kObject.size();
  auto with = [&](auto change) {
    jit::EntryMetadata other = m;
    change(other);
    return jit::serialize_entry(other, {kObject});
  };
  std::string flipped = good;
  flipped[header + 10] ^= 0x10;
  std::string bad_checksum = good;
  const size_t at = bad_checksum.find("\nchecksum ") + 10;
  bad_checksum[at] = bad_checksum[at] == '0' ? '1' : '0';

  const std::pair<std::string, std::string> cases[] = {
      {"", "empty file"},
      {good.substr(0, header + kObject.size() / 2), "truncated"},
      {good.substr(0, header / 2), "truncated header"},
      {flipped, "entry checksum"},
      {bad_checksum, "entry checksum"},
      {with([](auto& o) { o.cpu = "x86-64-v3"; }), "built for CPU 'x86-64-v3'"},
      {with([](auto& o) { o.features = "+sse2"; }), "built for features '+sse2'"},
      {with([](auto& o) { o.llvm_version = "18.1.8"; }), "built for LLVM '18.1.8'"},
      {with([](auto& o) { o.codegen_version = 0; }), "built for codegen version '0'"},
      {with([](auto& o) { o.kernel_names.pop_back(); }), "built for kernels"},
      {with([](auto& o) { o.key_text += ";x"; }), "built for key text"},
      {with([](auto& o) { o.key = std::string(32, 'a'); }), "built for key"},
      {good.substr(0, header), "metadata without object"},
      {good + "more", "bytes after the"},
      {"\x13\x37garbage\xff\x00 bytes", "not a flashjit cache entry"},
      {"flashjit-kernel-cache 1\nkey x\n", "entry format"},
      // Damaged bytes are quoted escaped, never raw (a NUL reached stdout through diagnostics).
      {std::string("flashjit-kernel-cache \x00\x07\n", 25), "entry format 'flashjit-kernel-cache \\x00\\x07'"},
  };
  for (const auto& [bytes, expected] : cases) {
    const std::string problem = problem_of(bytes, m);
    EXPECT_NE(problem.find(expected), std::string::npos)
        << "expected '" << expected << "', got '" << problem << "'";
  }
}

// A single flipped bit anywhere in the file, header included, never passes, even without the
// plan to compare the header with: `flashjit cache` lists entries knowing no plan.
TEST(CacheEntry, EveryFlippedBitIsDetected) {
  const jit::EntryMetadata m = sample_metadata();
  const std::string good = jit::serialize_entry(m, {kObject});
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bytes = good;
      bytes[i] = static_cast<char>(bytes[i] ^ (1 << bit));
      ASSERT_FALSE(static_cast<bool>(jit::parse_entry(bytes))) << "byte " << i << " bit " << bit;
      ASSERT_NE(problem_of(bytes, m), "") << "byte " << i << " bit " << bit;
    }
  }
}

TEST(DiskCache, StoresAtomicallyAndLoadsWhatItStored) {
  testing::TempDir dir("store");
  const jit::EntryMetadata m = sample_metadata();
  ASSERT_EQ(jit::store_entry(dir.path() / "nested", m, {kObject}), "");
  const jit::DiskLookup found = jit::load_entry(dir.path() / "nested", m);
  EXPECT_EQ(found.problem, "");
  EXPECT_EQ(found.objects, std::vector<std::string>{kObject});
  // Nothing but the entry itself is left behind.
  std::vector<std::string> names;
  for (const auto& f : fs::directory_iterator(dir.path() / "nested")) names.push_back(f.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{m.key + ".fjk"});
}

// A writer killed between creating its temporary file and renaming it leaves the file behind; a
// later process with the same pid (usual in containers) must still be able to write the entry.
TEST(DiskCache, AStaleTemporaryFileNeverBlocksAWrite) {
  testing::TempDir dir("stale_temp");
  const jit::EntryMetadata m = sample_metadata();
  for (int n = 0; n < 1000; ++n)
    testing::write_bytes(dir.path() / fmt::format("{}.fjk.tmp.{}.{}", m.key, ::getpid(), n), "x");
  ASSERT_EQ(jit::store_entry(dir.path(), m, {kObject}), "");
  EXPECT_EQ(jit::load_entry(dir.path(), m).objects, std::vector<std::string>{kObject});
}

// An unreadable cache is not an empty one: listing and clearing it fail, naming why.
TEST(DiskCache, ADirectoryThatCannotBeListedIsAnError) {
  testing::TempDir dir("loop");
  fs::create_symlink(dir.path() / "b", dir.path() / "a");
  fs::create_symlink(dir.path() / "a", dir.path() / "b");
  for (auto call : {+[](const fs::path& p) { (void)jit::list_entries(p); },
                    +[](const fs::path& p) { (void)jit::clear_entries(p); }}) {
    try {
      call(dir.path() / "a");
      ADD_FAILURE() << "expected IoError";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("cannot list " + (dir.path() / "a").string()),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_TRUE(jit::list_entries(dir.path() / "absent").empty());
}

TEST(DiskCache, ReportsAnUnwritableDirectory) {
  testing::TempDir dir("unwritable");
  testing::write_bytes(dir.path() / "file", "not a directory");
  const std::string problem = jit::store_entry(dir.path() / "file" / "cache", sample_metadata(), {kObject});
  EXPECT_NE(problem.find("cannot create"), std::string::npos) << problem;
}

TEST(CacheDirectory, FollowsTheEnvironment) {
  testing::ScopedEnv cache("FLASHJIT_CACHE_DIR", "/tmp/fj_cache");
  testing::ScopedEnv xdg("XDG_CACHE_HOME", "/tmp/xdg");
  testing::ScopedEnv home("HOME", "/tmp/home");
  EXPECT_EQ(jit::cache_directory(), fs::path("/tmp/fj_cache"));
  {
    testing::ScopedEnv unset("FLASHJIT_CACHE_DIR", std::nullopt);
    EXPECT_EQ(jit::cache_directory(), fs::path("/tmp/xdg/flashjit"));
    testing::ScopedEnv unset_xdg("XDG_CACHE_HOME", "");
    EXPECT_EQ(jit::cache_directory(), fs::path("/tmp/home/.cache/flashjit"));
    testing::ScopedEnv unset_home("HOME", std::nullopt);
    EXPECT_EQ(jit::cache_directory(), fs::path());
  }
}

TEST(DiskCache, ListsEntriesAndClearsOnlyItsOwnFiles) {
  testing::TempDir dir("list");
  const jit::EntryMetadata m = sample_metadata();
  ASSERT_EQ(jit::store_entry(dir.path(), m, {kObject}), "");
  jit::EntryMetadata other = m;
  other.key = std::string(32, 'b');
  testing::write_bytes(jit::entry_path(dir.path(), other.key), "damaged");
  testing::write_bytes(dir.path() / (m.key + ".fjk.tmp.123.0"), "left by a crash");
  testing::write_bytes(dir.path() / "notes.txt", "the user's");

  const auto listing = jit::list_entries(dir.path());
  ASSERT_EQ(listing.size(), 3u);
  int valid = 0, temporary = 0;
  for (const jit::EntryListing& e : listing) {
    if (e.metadata) {
      ++valid;
      EXPECT_EQ(*e.metadata, m);
      EXPECT_EQ(e.bytes, jit::serialize_entry(m, {kObject}).size());
    } else if (e.temporary) {
      ++temporary;
      EXPECT_EQ(e.bytes, 15u);
      EXPECT_NE(e.problem.find("interrupted"), std::string::npos) << e.problem;
    } else {
      EXPECT_NE(e.problem.find("not a flashjit cache entry"), std::string::npos) << e.problem;
    }
  }
  EXPECT_EQ(valid, 1);
  EXPECT_EQ(temporary, 1);

  EXPECT_EQ(jit::clear_entries(dir.path()), 3u);
  EXPECT_TRUE(jit::list_entries(dir.path()).empty());
  EXPECT_TRUE(fs::exists(dir.path() / "notes.txt"));
  EXPECT_EQ(jit::clear_entries(dir.path() / "absent"), 0u);
}

}  // namespace
}  // namespace flashjit
