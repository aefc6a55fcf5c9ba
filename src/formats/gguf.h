// GGUF (versions 2 and 3): a validating zero-copy reader over a memory-mapped file, and a
// streaming atomic writer. Everything read from a file is untrusted: counts are checked
// against the file size before allocating, every size and offset is overflow-checked, and
// errors name the file, the section and the key or tensor.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/result.h"
#include "core/types.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"
#include "io/opened_input.h"

namespace qforge {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
std::string_view gguf_type_name(GgufType t);

class GgufValue;
struct GgufArray {
  GgufType elem_type = GgufType::U8;
  std::vector<GgufValue> items;
  bool operator==(const GgufArray& o) const;
};

// One metadata value with its exact GGUF type (kept so that a file re-writes byte-identically).
class GgufValue {
 public:
  GgufValue() = default;
  static GgufValue u8(uint8_t v) { return GgufValue(GgufType::U8, uint64_t{v}); }
  static GgufValue i8(int8_t v) { return GgufValue(GgufType::I8, int64_t{v}); }
  static GgufValue u16(uint16_t v) { return GgufValue(GgufType::U16, uint64_t{v}); }
  static GgufValue i16(int16_t v) { return GgufValue(GgufType::I16, int64_t{v}); }
  static GgufValue u32(uint32_t v) { return GgufValue(GgufType::U32, uint64_t{v}); }
  static GgufValue i32(int32_t v) { return GgufValue(GgufType::I32, int64_t{v}); }
  static GgufValue u64(uint64_t v) { return GgufValue(GgufType::U64, v); }
  static GgufValue i64(int64_t v) { return GgufValue(GgufType::I64, v); }
  static GgufValue f32(float v) { return GgufValue(GgufType::F32, static_cast<double>(v)); }
  static GgufValue f64(double v) { return GgufValue(GgufType::F64, v); }
  static GgufValue boolean(bool v) { return GgufValue(GgufType::BOOL, v); }
  static GgufValue string(std::string v) { return GgufValue(GgufType::STRING, std::move(v)); }
  static GgufValue array(GgufType elem, std::vector<GgufValue> items) {
    return GgufValue(GgufType::ARRAY, GgufArray{elem, std::move(items)});
  }
  static GgufValue string_array(const std::vector<std::string>& v);
  static GgufValue f32_array(const std::vector<float>& v);
  static GgufValue i32_array(const std::vector<int32_t>& v);

  GgufType type() const { return type_; }
  bool is_array() const { return type_ == GgufType::ARRAY; }
  // Integer value (any integer type or bool); nullopt for other types or a negative value.
  std::optional<uint64_t> as_uint() const;
  std::optional<int64_t> as_int() const;
  // Float value (F32/F64, or any integer type converted).
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const { return std::get_if<std::string>(&v_); }
  const GgufArray* as_array() const { return std::get_if<GgufArray>(&v_); }
  // Short human rendering (arrays abbreviated), for `inspect`.
  std::string to_display(size_t max_items = 8) const;
  bool operator==(const GgufValue& o) const;

 private:
  using Storage = std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray>;
  GgufValue(GgufType t, Storage v) : type_(t), v_(std::move(v)) {}
  GgufType type_ = GgufType::U8;
  Storage v_ = uint64_t{0};
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // dims[0] is the row length (innermost), as in ggml's ne[]
  Type type = Type::F32;
  uint64_t offset = 0;  // relative to the data section
  uint64_t size = 0;    // bytes of data
  uint64_t n_elements() const;
  uint64_t n_rows() const { return dims.empty() || dims[0] == 0 ? 0 : n_elements() / dims[0]; }
};

using GgufKv = std::pair<std::string, GgufValue>;

class GgufFile {
 public:
  // Opens the file under the process-wide load policy, maps and parses it.
  static Result<GgufFile> open(const std::string& path);
  // Maps and parses an already opened (and policy-checked) input: the descriptor that was
  // verified is the one that is parsed.
  static Result<GgufFile> open(const OpenedInput& in);
  // Parses bytes owned by the caller (must outlive the GgufFile); `name` is used in errors.
  static Result<GgufFile> parse(std::span<const uint8_t> bytes, std::string name);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return bytes_.size(); }
  const std::string& path() const { return name_; }
  std::span<const uint8_t> bytes() const { return bytes_; }

  const std::vector<GgufKv>& kvs() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;
  // Typed getters whose errors name the file and key.
  Result<uint64_t> get_uint(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  std::string get_string_or(std::string_view key, std::string def) const;
  std::string architecture() const { return get_string_or("general.architecture", ""); }

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  std::span<const uint8_t> tensor_data(const GgufTensorInfo& t) const {
    return bytes_.subspan(data_offset_ + t.offset, t.size);
  }
  uint64_t tensor_data_bytes() const;  // sum of tensor sizes
  // Drops the tensor's pages from the resident set (streaming passes call it when done).
  void release(const GgufTensorInfo& t) const;

 private:
  std::shared_ptr<MappedFile> map_;
  std::span<const uint8_t> bytes_;
  std::string name_;
  uint32_t version_ = 3;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::vector<GgufTensorInfo> tensors_;
};

struct GgufWriterOptions {
  bool overwrite = false;     // --force
  bool write_sidecar = true;  // NAME.sha256
  uint32_t version = 3;
};

// Streaming writer: add KVs and tensor infos, write_header(), then each tensor's data in info
// order (write_tensor_data, or append_tensor_data pieces then finish_tensor), then commit().
// Alignment is general.alignment if that KV is set (u32 power of two), else 32. The file is
// written atomically (see AtomicFile); nothing is left behind on error.
class GgufWriter {
 public:
  static Result<GgufWriter> create(const std::string& path, GgufWriterOptions opts = {});
  GgufWriter() = default;

  // Adds or replaces (in place) a KV.
  void set_kv(std::string key, GgufValue value);
  void remove_kv(std::string_view key);
  const std::vector<GgufKv>& kvs() const { return kvs_; }
  // Copies every KV of a file (order kept).
  void copy_kvs(const GgufFile& f);
  Status add_tensor(std::string name, std::vector<uint64_t> dims, Type type);
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  // Exact size of the file that will be written (valid once all tensors are added).
  uint64_t planned_size() const;

  Status write_header();
  Status write_tensor_data(std::span<const uint8_t> data);
  Status append_tensor_data(std::span<const uint8_t> piece);
  Status finish_tensor();
  // Finishes the file; returns its SHA-256 (hex).
  Result<std::string> commit();
  const std::string& path() const { return path_; }

 private:
  uint32_t effective_alignment() const;
  uint64_t header_size() const;
  std::string path_;
  GgufWriterOptions opts_;
  std::vector<GgufKv> kvs_;
  std::vector<GgufTensorInfo> tensors_;
  AtomicFile out_;
  bool header_written_ = false;
  size_t next_tensor_ = 0;
  uint64_t cur_written_ = 0;
};

// Serialises a KV list + tensor infos as a GGUF header (no padding); exposed for tests/fuzzers.
std::vector<uint8_t> gguf_serialize_header(uint32_t version, const std::vector<GgufKv>& kvs,
                                           const std::vector<GgufTensorInfo>& tensors);

}  // namespace qforge
