// Minimal leveled logging to stderr for Kiln's own diagnostics (not function logs).
#pragma once

#include <string_view>

namespace kiln::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_level(Level level);
bool enabled(Level level);
void write(Level level, std::string_view message);

inline void debug(std::string_view m) { if (enabled(Level::kDebug)) write(Level::kDebug, m); }
inline void info(std::string_view m) { if (enabled(Level::kInfo)) write(Level::kInfo, m); }
inline void warn(std::string_view m) { if (enabled(Level::kWarn)) write(Level::kWarn, m); }
inline void error(std::string_view m) { write(Level::kError, m); }

}  // namespace kiln::log
