/* The Lua sources under lua/, compiled into the binary by src/build/embed_lua.c. */
#ifndef BAI_EMBEDDED_H
#define BAI_EMBEDDED_H

#include <stddef.h>

struct bai_embedded {
  const char *module;     /* "batchai.cli.help", sorted by strcmp */
  const char *chunkname;  /* "@lua/batchai/cli/help.lua", so tracebacks name real files */
  const char *source;
  size_t size;
};

extern const struct bai_embedded bai_embedded_modules[];
extern const size_t bai_embedded_count;

#endif
