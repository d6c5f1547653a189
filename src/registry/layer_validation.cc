// Validation of layer requests against botocore's Lambda model: constraints (lengths,
// patterns, enums) are ValidationException, semantic refusals InvalidParameterValue.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <regex>

#include "common/crypto.h"
#include "common/numbers.h"
#include "registry/layers.h"

namespace kiln::registry {

using nlohmann::json;

namespace {

// The model's Runtime and Architecture enums.
constexpr const char* kRuntimes[] = {
    "nodejs",        "nodejs4.3",     "nodejs6.10",     "nodejs8.10",  "nodejs10.x",     "nodejs12.x",
    "nodejs14.x",    "nodejs16.x",    "java8",          "java8.al2",   "java11",         "python2.7",
    "python3.6",     "python3.7",     "python3.8",      "python3.9",   "dotnetcore1.0",  "dotnetcore2.0",
    "dotnetcore2.1", "dotnetcore3.1", "dotnet6",        "dotnet8",     "nodejs4.3-edge", "go1.x",
    "ruby2.5",       "ruby2.7",       "provided",       "provided.al2", "nodejs18.x",    "python3.10",
    "java17",        "ruby3.2",       "ruby3.3",        "ruby3.4",     "python3.11",     "nodejs20.x",
    "provided.al2023", "python3.12",  "java21",         "python3.13",  "nodejs22.x",     "nodejs24.x",
    "python3.14",    "java25",        "dotnet10",       "ruby4.0"};
constexpr const char* kArchitectures[] = {"x86_64", "arm64"};

constexpr const char* kLayerNamePattern =
    "(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+";

Status validation(const std::string& value, const std::string& field, const std::string& constraint) {
  return {400, "ValidationException",
          "1 validation error detected: Value '" + value + "' at '" + field +
              "' failed to satisfy constraint: " + constraint};
}

template <size_t N>
bool one_of(const std::string& v, const char* const (&set)[N]) {
  return std::any_of(std::begin(set), std::end(set), [&](const char* s) { return v == s; });
}

template <size_t N>
std::string enum_list(const char* const (&set)[N]) {
  std::string out;
  for (const char* s : set) out += (out.empty() ? "" : ", ") + std::string(s);
  return "[" + out + "]";
}

Status optional_string(const json& req, const char* key, size_t max, const char* field, std::string* out) {
  auto it = req.find(key);
  if (it == req.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) {
    return InvalidRequestContent(std::string("Could not parse request body into json: ") + key + " must be a string");
  }
  *out = it->get<std::string>();
  if (out->size() > max) {
    return validation(*out, field, "Member must have length less than or equal to " + std::to_string(max));
  }
  return Status::Ok();
}

template <size_t N>
Status optional_enum_list(const json& req, const char* key, size_t max, const char* field,
                          const char* const (&set)[N], std::vector<std::string>* out) {
  auto it = req.find(key);
  if (it == req.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) {
    return InvalidRequestContent(std::string("Could not parse request body into json: ") + key + " must be a list");
  }
  std::string shown;
  for (const json& v : *it) {
    if (!v.is_string()) {
      return InvalidRequestContent(std::string("Could not parse request body into json: ") + key +
                                   " must hold strings");
    }
    out->push_back(v.get<std::string>());
    shown += (shown.empty() ? "" : ", ") + out->back();
  }
  shown = "[" + shown + "]";
  if (out->size() > max) {
    return validation(shown, field, "Member must have length less than or equal to " + std::to_string(max));
  }
  for (const std::string& v : *out) {
    if (!one_of(v, set)) {
      return validation(shown, field,
                        "Member must satisfy constraint: [Member must satisfy enum value set: " + enum_list(set) + "]");
    }
  }
  return Status::Ok();
}

Status parse_content(const json& req, std::string* zip) {
  auto content = req.find("Content");
  if (content == req.end() || content->is_null()) {
    return validation("null", "content", "Member must not be null");
  }
  if (!content->is_object()) {
    return InvalidRequestContent("Could not parse request body into json: Content must be an object");
  }
  for (const char* other : {"S3Bucket", "S3Key", "S3ObjectVersion"}) {
    if (content->contains(other) && !(*content)[other].is_null()) {
      return InvalidParameterValue(std::string("Kiln accepts layer content as ZipFile only; ") + other +
                                   " is not supported.");
    }
  }
  auto zip_field = content->find("ZipFile");
  if (zip_field == content->end() || zip_field->is_null()) {
    return InvalidParameterValue("Please provide a source for the layer content (Content.ZipFile).");
  }
  if (!zip_field->is_string()) {
    return InvalidRequestContent("Could not parse request body into json: ZipFile must be a base64 string");
  }
  if (!crypto::base64_decode(zip_field->get_ref<const std::string&>(), zip)) {
    return InvalidRequestContent("Could not parse request body into json: ZipFile is not valid base64");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<LayerPublish> parse_publish_request(const json& req) {
  if (!req.is_object()) return InvalidRequestContent("Could not parse request body into json: not an object");
  LayerPublish p;
  if (Status s = optional_string(req, "Description", 256, "description", &p.description); !s.ok()) return s;
  if (Status s = optional_string(req, "LicenseInfo", 512, "licenseInfo", &p.license_info); !s.ok()) return s;
  if (Status s = optional_enum_list(req, "CompatibleRuntimes", 15, "compatibleRuntimes", kRuntimes,
                                    &p.compatible_runtimes);
      !s.ok()) {
    return s;
  }
  if (Status s = optional_enum_list(req, "CompatibleArchitectures", 2, "compatibleArchitectures",
                                    kArchitectures, &p.compatible_architectures);
      !s.ok()) {
    return s;
  }
  if (Status s = parse_content(req, &p.zip); !s.ok()) return s;
  return p;
}

StatusOr<std::string> parse_layer_name(const std::string& param, const std::string& region,
                                       const std::string& account) {
  static const std::regex kArn(R"(arn:([a-zA-Z0-9-]+):lambda:([a-zA-Z0-9-]+):(\d{12}):layer:([a-zA-Z0-9_-]+))");
  static const std::regex kName(R"([a-zA-Z0-9_-]+)");
  if (param.empty() || param.size() > 140) {
    return validation(param, "layerName",
                      "Member must have length less than or equal to 140, Member must have length greater "
                      "than or equal to 1");
  }
  if (std::regex_match(param, kName)) return param;
  std::smatch m;
  if (!std::regex_match(param, m, kArn)) {
    return validation(param, "layerName",
                      std::string("Member must satisfy regular expression pattern: ") + kLayerNamePattern);
  }
  if (m[2].str() != region || m[3].str() != account) {
    return ResourceNotFound("The resource you requested does not exist.");
  }
  return m[4].str();
}

StatusOr<int64_t> parse_layer_version_number(const std::string& param) {
  auto n = parse_number<int64_t>(param);
  if (!n || param.size() > 18) return validation(param, "versionNumber", "Member must be a number");
  int64_t v = *n;
  if (v < 1) return validation(param, "versionNumber", "Member must have value greater than or equal to 1");
  return v;
}

Status validate_list_query(const LayerListQuery& q, int64_t* max_items) {
  if (!q.compatible_runtime.empty() && !one_of(q.compatible_runtime, kRuntimes)) {
    return validation(q.compatible_runtime, "compatibleRuntime",
                      "Member must satisfy enum value set: " + enum_list(kRuntimes));
  }
  if (!q.compatible_architecture.empty() && !one_of(q.compatible_architecture, kArchitectures)) {
    return validation(q.compatible_architecture, "compatibleArchitecture",
                      "Member must satisfy enum value set: " + enum_list(kArchitectures));
  }
  *max_items = 50;
  if (!q.max_items.empty()) {
    const std::string& m = q.max_items;
    auto n = parse_number<int64_t>(m);
    if (!n || *n < 1 || *n > 50) {
      return validation(m, "maxItems", "Member must have value between 1 and 50");
    }
    *max_items = *n;
  }
  return Status::Ok();
}

}  // namespace kiln::registry
