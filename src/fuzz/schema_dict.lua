-- Prints the fuzz target's mutation dictionary: every field name and enum value
-- of the schema as a quoted JSON string (libFuzzer -dict format).
local schema = require "batchai.schema"
local seen = {}
for _, type_name in ipairs(schema.type_names()) do
  for _, field in ipairs(schema.fields(type_name)) do
    for _, word in ipairs({ field.name, table.unpack(field.values or {}) }) do
      if not seen[word] then
        seen[word] = true
        print(('"\\"%s\\""'):format(word))
      end
    end
  end
end
