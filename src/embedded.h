/* The Lua modules under lua/, precompiled into the binary by src/build/embed_lua.c. */
#ifndef BAI_EMBEDDED_H
#define BAI_EMBEDDED_H

#include <stddef.h>

struct bai_embedded {
  const char *module;     /* "batchai.cli.help", sorted by strcmp */
  const char *chunkname;  /* "@lua/batchai/cli/help.lua", so tracebacks name real files */
  const char *code;       /* bytecode of liblua5.4.a's format, with debug information */
  size_t size;
};

extern const struct bai_embedded bai_embedded_modules[];
extern const size_t bai_embedded_count;

#endif
