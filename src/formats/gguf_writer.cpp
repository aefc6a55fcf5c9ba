#include <cstring>

#include "core/checked.h"
#include "formats/gguf.h"

namespace qforge {
namespace {

template <class T>
void put(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}
void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

void put_value(std::vector<uint8_t>& out, const GgufValue& v) {
  switch (v.type()) {
    case GgufType::U8: put<uint8_t>(out, static_cast<uint8_t>(*v.as_uint())); break;
    case GgufType::I8: put<int8_t>(out, static_cast<int8_t>(*v.as_int())); break;
    case GgufType::U16: put<uint16_t>(out, static_cast<uint16_t>(*v.as_uint())); break;
    case GgufType::I16: put<int16_t>(out, static_cast<int16_t>(*v.as_int())); break;
    case GgufType::U32: put<uint32_t>(out, static_cast<uint32_t>(*v.as_uint())); break;
    case GgufType::I32: put<int32_t>(out, static_cast<int32_t>(*v.as_int())); break;
    case GgufType::F32: put<float>(out, static_cast<float>(*v.as_float())); break;
    case GgufType::U64: put<uint64_t>(out, *v.as_uint()); break;
    case GgufType::I64: put<int64_t>(out, *v.as_int()); break;
    case GgufType::F64: put<double>(out, *v.as_float()); break;
    case GgufType::BOOL: put<uint8_t>(out, *v.as_bool() ? 1 : 0); break;
    case GgufType::STRING: put_string(out, *v.as_string()); break;
    case GgufType::ARRAY: {
      const GgufArray* a = v.as_array();
      put<uint32_t>(out, static_cast<uint32_t>(a->elem_type));
      put<uint64_t>(out, a->items.size());
      for (const auto& item : a->items) put_value(out, item);
      break;
    }
  }
}

}  // namespace

std::vector<uint8_t> gguf_serialize_header(uint32_t version, const std::vector<GgufKv>& kvs,
                                           const std::vector<GgufTensorInfo>& tensors) {
  std::vector<uint8_t> out;
  out.insert(out.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(out, version);
  put<int64_t>(out, static_cast<int64_t>(tensors.size()));
  put<int64_t>(out, static_cast<int64_t>(kvs.size()));
  for (const auto& [k, v] : kvs) {
    put_string(out, k);
    put<uint32_t>(out, static_cast<uint32_t>(v.type()));
    put_value(out, v);
  }
  for (const auto& t : tensors) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) put<int64_t>(out, static_cast<int64_t>(d));
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, t.offset);
  }
  return out;
}

Result<GgufWriter> GgufWriter::create(const std::string& path, GgufWriterOptions opts) {
  GgufWriter w;
  w.path_ = path;
  w.opts_ = opts;
  AtomicFileOptions ao;
  ao.overwrite = opts.overwrite;
  ao.write_sidecar = opts.write_sidecar;
  QF_TRY(w.out_, AtomicFile::create(path, ao));
  return w;
}

void GgufWriter::set_kv(std::string key, GgufValue value) {
  for (auto& kv : kvs_)
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  kvs_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::remove_kv(std::string_view key) {
  std::erase_if(kvs_, [&](const GgufKv& kv) { return kv.first == key; });
}

void GgufWriter::copy_kvs(const GgufFile& f) {
  for (const auto& [k, v] : f.kvs()) set_kv(k, v);
}

uint32_t GgufWriter::effective_alignment() const {
  for (const auto& [k, v] : kvs_)
    if (k == "general.alignment") {
      auto a = v.as_uint();
      if (a && is_pow2(*a)) return static_cast<uint32_t>(*a);
    }
  return 32;
}

Status GgufWriter::add_tensor(std::string name, std::vector<uint64_t> dims, Type type) {
  if (header_written_) return make_error(path_, ": add_tensor after write_header");
  for (const auto& t : tensors_)
    if (t.name == name) return make_error(path_, ": duplicate tensor '", name, "'");
  if (dims.empty() || dims.size() > 4)
    return make_error(path_, ": tensor '", name, "': bad number of dimensions ", dims.size());
  GgufTensorInfo t;
  t.name = std::move(name);
  t.dims = std::move(dims);
  t.type = type;
  auto sz = tensor_size(type, t.dims);
  if (!sz) return make_error(path_, ": tensor '", t.name, "': ", sz.error().message);
  t.size = *sz;
  const uint64_t al = effective_alignment();
  uint64_t off = 0;
  if (!tensors_.empty()) off = *checked_align_up(tensors_.back().offset + tensors_.back().size, al);
  t.offset = off;
  tensors_.push_back(std::move(t));
  return ok_status();
}

uint64_t GgufWriter::header_size() const {
  return gguf_serialize_header(opts_.version, kvs_, tensors_).size();
}

uint64_t GgufWriter::planned_size() const {
  uint64_t h = header_size();
  if (tensors_.empty()) return h;
  const uint64_t al = effective_alignment();
  const auto& last = tensors_.back();
  return *checked_align_up(h, al) + *checked_align_up(last.offset + last.size, al);
}

Status GgufWriter::write_header() {
  if (header_written_) return make_error(path_, ": header written twice");
  // Offsets depend on the alignment, which may have been set after tensors were added.
  const uint64_t al = effective_alignment();
  uint64_t off = 0;
  for (auto& t : tensors_) {
    t.offset = off;
    off = *checked_align_up(off + t.size, al);
  }
  auto h = gguf_serialize_header(opts_.version, kvs_, tensors_);
  // The whole size is known now: a disk without room for it fails before any data is written.
  QF_CHECK(out_.reserve(planned_size()));
  QF_CHECK(out_.write(h.data(), h.size()));
  if (!tensors_.empty()) {
    uint64_t padded = *checked_align_up(h.size(), al);
    QF_CHECK(out_.write_zeros(padded - h.size()));
  }
  header_written_ = true;
  return ok_status();
}

Status GgufWriter::append_tensor_data(std::span<const uint8_t> piece) {
  if (!header_written_) return make_error(path_, ": tensor data before header");
  if (next_tensor_ >= tensors_.size()) return make_error(path_, ": more tensor data than tensors");
  const auto& t = tensors_[next_tensor_];
  if (cur_written_ + piece.size() > t.size)
    return make_error(path_, ": tensor '", t.name, "': more data than its size ", t.size);
  QF_CHECK(out_.write(piece.data(), piece.size()));
  cur_written_ += piece.size();
  return ok_status();
}

Status GgufWriter::finish_tensor() {
  if (next_tensor_ >= tensors_.size()) return make_error(path_, ": finish_tensor without tensor");
  const auto& t = tensors_[next_tensor_];
  if (cur_written_ != t.size)
    return make_error(path_, ": tensor '", t.name, "': wrote ", cur_written_, " bytes, expected ",
                      t.size);
  const uint64_t al = effective_alignment();
  QF_CHECK(out_.write_zeros(*checked_align_up(t.size, al) - t.size));
  ++next_tensor_;
  cur_written_ = 0;
  return ok_status();
}

Status GgufWriter::write_tensor_data(std::span<const uint8_t> data) {
  QF_CHECK(append_tensor_data(data));
  return finish_tensor();
}

Result<std::string> GgufWriter::commit() {
  if (!header_written_) QF_CHECK(write_header());
  if (next_tensor_ != tensors_.size())
    return make_error(path_, ": only ", next_tensor_, " of ", tensors_.size(),
                      " tensors were written");
  QF_CHECK(out_.commit());
  return out_.sha256();
}

}  // namespace qforge
