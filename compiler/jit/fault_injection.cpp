#include "compiler/jit/fault_injection.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <utility>

#include <fmt/format.h>

#include "ir/error.h"

namespace flashjit::jit {

namespace {

constexpr std::array<std::pair<FaultSite, const char*>, 7> kSites = {{
    {FaultSite::Verifier, "verifier"},
    {FaultSite::Codegen, "codegen"},
    {FaultSite::EmitObject, "emit-object"},
    {FaultSite::SymbolLookup, "symbol-lookup"},
    {FaultSite::CacheWrite, "cache-write"},
    {FaultSite::CacheDamage, "cache-damage"},
    {FaultSite::CompileThread, "compile-thread"},
}};

std::string_view trim(std::string_view text) {
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  return text;
}

std::string valid_names() {
  std::string names;
  for (const auto& [site, name] : kSites) names += (names.empty() ? "" : ", ") + std::string(name);
  return names;
}

std::vector<FaultSite> sites_from_environment() {
  const char* value = std::getenv("FLASHJIT_FAULT");
  if (!value || !*value) return {};
  return parse_fault_sites(value);
}

}  // namespace

const char* to_string(FaultSite site) {
  for (const auto& [known, name] : kSites)
    if (known == site) return name;
  return "?";
}

std::vector<FaultSite> parse_fault_sites(std::string_view text) {
  std::vector<FaultSite> sites;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    const auto* found = std::find_if(kSites.begin(), kSites.end(),
                                     [&](const auto& entry) { return item == entry.second; });
    if (found == kSites.end())
      throw InvalidArgument(fmt::format("FLASHJIT_FAULT: expected fault sites among {}, got '{}'",
                                        valid_names(), item));
    sites.push_back(found->first);
  }
  return sites;
}

bool fault_injected(FaultSite site) {
  const std::vector<FaultSite> sites = sites_from_environment();
  return std::find(sites.begin(), sites.end(), site) != sites.end();
}

void check_fault_sites() { sites_from_environment(); }

std::string fault_note(FaultSite site) {
  return fmt::format("injected fault (FLASHJIT_FAULT={})", to_string(site));
}

}  // namespace flashjit::jit
