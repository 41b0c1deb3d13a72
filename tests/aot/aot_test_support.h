// Helpers of the AOT tests: the symbols an object defines and needs, and compiling C/C++ snippets
// with the system compiler.
#pragma once

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/MemoryBuffer.h>

namespace flashjit::testing {

struct ObjectSymbols {
  std::set<std::string> defined;    // global definitions
  std::set<std::string> undefined;  // what the object needs from elsewhere
};

inline ObjectSymbols object_symbols(const std::string& bytes) {
  ObjectSymbols out;
  auto buffer = llvm::MemoryBuffer::getMemBufferCopy(bytes, "kernel.o");
  auto object = llvm::object::ObjectFile::createObjectFile(buffer->getMemBufferRef());
  if (!object) {
    ADD_FAILURE() << "not an object file: " << llvm::toString(object.takeError());
    return out;
  }
  for (const llvm::object::SymbolRef& symbol : (*object)->symbols()) {
    auto flags = symbol.getFlags();
    auto name = symbol.getName();
    if (!flags || !name) {
      llvm::consumeError(flags.takeError());
      llvm::consumeError(name.takeError());
      ADD_FAILURE() << "unreadable symbol";
      continue;
    }
    if (*flags & llvm::object::SymbolRef::SF_Undefined)
      out.undefined.insert(name->str());
    else if (*flags & llvm::object::SymbolRef::SF_Global)
      out.defined.insert(name->str());
  }
  return out;
}

// True when libc or libm defines `name`.
inline bool in_libc_or_libm(const std::string& name) {
  for (const char* lib : {"libc.so.6", "libm.so.6"}) {
    void* handle = ::dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
    if (!handle) handle = ::dlopen(lib, RTLD_NOW);
    if (handle && ::dlsym(handle, name.c_str())) return true;
  }
  return false;
}

// Runs `command` through the shell; its exit status, with stderr folded into `output`.
inline int run_shell(const std::string& command, std::string* output = nullptr) {
  const std::string log = ::testing::TempDir() + "flashjit_aot_shell_" + std::to_string(::getpid());
  const int status = std::system((command + " >" + log + " 2>&1").c_str());
  if (output) {
    std::FILE* f = std::fopen(log.c_str(), "rb");
    output->clear();
    if (f) {
      char chunk[4096];
      size_t n = 0;
      while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) output->append(chunk, n);
      std::fclose(f);
    }
  }
  std::remove(log.c_str());
  return status;
}

}  // namespace flashjit::testing
